"""Why gates matter, measured: gradient flow through time, gate saturation, and how initialisation
and clipping change both.

- ``gradient_flow``: ||dL_T/dh_t|| and ||dL_T/dc_t|| against the lag T - t, and the fitted rate per
  step at which they decay (< 1) or grow (> 1).
- ``gate_stats``: per gate and unit, the fractions of time left-saturated (< 0.1) and
  right-saturated (> 0.9) (Karpathy, Johnson & Fei-Fei 2015), and the long-memory units.
- ``studies``: the measurements for several cells, initialisers, recurrent gains and clipping
  thresholds, on freshly initialised or briefly trained models.
- ``plots``: the figures; ``cli``: the ``lstm-variants-diagnose`` Hydra app.
"""
