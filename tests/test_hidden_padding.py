"""The cost model of padding members to a common hidden size (lstm_variants.hidden_padding)."""

import math

from lstm_variants.hidden_padding import wasted_work


def step_work(hidden, input_size):
    """Multiply-adds of one step of a layer: h units, each reading D inputs and h hidden units."""
    return hidden * input_size + hidden * hidden


def test_wasted_work_counts_the_input_products_as_well_as_the_recurrent_ones():
    # JSB's 88 inputs, h = 50 padded to H = 100: 6,900 of 18,800 multiply-adds are the member's.
    expected = 1 - step_work(50, 88) / step_work(100, 88)
    assert math.isclose(expected, 1 - 6900 / 18800)
    assert math.isclose(wasted_work(50, 100, 88), expected)  # about 0.633
    # Without inputs the waste is 1 - (h/H)^2; when the input products dominate it tends to
    # 1 - h/H: bucketing by the recurrent term alone would overstate the waste of wide inputs.
    assert math.isclose(wasted_work(50, 100, 0), 0.75)
    assert math.isclose(wasted_work(50, 100, 10**9), 0.5, rel_tol=1e-6)


def test_buckets_and_their_waste_by_hand():
    # No inputs (D = 0): a member of size h in a bucket of size H wastes 1 - (h/H)^2. From the
    # largest down: 100, 100 open a bucket of 100; 60 wastes 0.64 <= 0.7 and joins; 50 would
    # waste 0.75 and opens its own. Members are listed in ascending order within a bucket.
    from lstm_variants.hidden_padding import bucket_waste, hidden_buckets

    sizes = [50, 100, 60, 100]
    buckets = hidden_buckets(sizes, 0, 0.7)
    assert buckets == [(100, [1, 2, 3]), (50, [0])]
    # Useful work 100^2 + 100^2 + 60^2 + 50^2 = 26,100 of 3 * 100^2 + 50^2 = 32,500 spent.
    assert math.isclose(bucket_waste(buckets, sizes, 0), 1 - 26100 / 32500)
    assert bucket_waste([(50, [0])], sizes, 0) == 0.0


def test_the_wasted_work_of_stacked_layers_counts_every_layer():
    """Above the first layer the input is the layer below (width h), so padding wastes more of
    a deeper network's work: 100 and 63 units share a bucket at 0.5 for one layer on JSB's 88
    inputs, and not for two, where the 63-unit member would waste 55 % of its work."""
    from lstm_variants.hidden_padding import bucket_waste, hidden_buckets, step_work

    assert step_work(63, 88, 2) == 63 * (88 + 63) + 2 * 63**2
    assert math.isclose(
        wasted_work(63, 100, 88, 2), 1 - step_work(63, 88, 2) / step_work(100, 88, 2)
    )
    assert 0.5 < wasted_work(63, 100, 88, 2) < 0.56
    assert hidden_buckets([100, 63], 88, 0.5) == [(100, [0, 1])]
    assert hidden_buckets([100, 63], 88, 0.5, num_layers=2) == [(100, [0]), (63, [1])]
    waste = bucket_waste([(100, [0, 1])], [100, 63], 88, 2)
    assert math.isclose(
        waste, 1 - (step_work(100, 88, 2) + step_work(63, 88, 2)) / (2 * step_work(100, 88, 2))
    )
