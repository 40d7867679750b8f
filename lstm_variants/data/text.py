"""Text datasets (being written in this session): registered into `lstm_variants.data.DATASETS`."""

TEXT_DATASETS: dict = {}
TEXT_FILES: dict[str, tuple[str, ...]] = {}
