"""Why gates matter, measured: gradient flow through time, gate saturation, and how initialisation
and clipping change both.

- ``gradient_flow``: ||dL_T/dh_t|| and ||dL_T/dc_t|| (c_t as carried on, y_t held fixed) against the
  lag T - t, and the fitted rate per step at which they decay (< 1) or grow (> 1).
- ``gate_stats``: per gate and unit, the fractions of time left-saturated (< 0.1) and
  right-saturated (> 0.9) (Karpathy, Johnson & Fei-Fei 2015), and the long-memory units.
- ``studies``: the measurements for several cells, initialisers, recurrent gains and clipping
  thresholds, on freshly initialised or briefly trained models.
- ``settings``: the ``diagnose`` config section checked before anything is trained or measured.
- ``plots``: the figures; ``cli``: the ``lstm-variants-diagnose`` Hydra app.
"""
