"""Analysis of a finished sweep: the numbers and figures that decide the papers' claims.

A component below the stages: pure functions over plain data (numpy arrays, dicts, pandas
tables), so that the sweep, the report and a notebook can share them and the tests can feed
them synthetic data. Nothing here trains, generates or grades; the loader only reads files.

- `bootstrap`: percentile intervals and the two-level (seeds, then problems) paired bootstrap.
- `curves`: metric against data size, its log-linear fit, the dip below the base, the sharper rise.
- `rates`: completion and think-tag rates against log(size) and against accuracy across cells.
- `verdict`: the decision rule (superiority, equivalence) and each claim's kind and margin.
- `plots`: the valley curve, the forest plot of the claims' effects, rates against size (PNG files).
- `load`: a sweep directory into per-(cell, student, benchmark, problem) scores.

The package itself imports nothing, so that the evaluate stage can use `bootstrap` without
paying for scipy, pandas or matplotlib.
"""
