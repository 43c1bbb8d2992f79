"""Evaluation: the task registry, one evaluation of a model (and adapter) on lm-eval through the
engines, its cache, and every score computed from outputs (sacreBLEU metrics, generation fidelity and
hygiene, language ID, COMET, the pairwise judge, train/test disjointness, per-item samples).

May import: harness.core and harness.engines. The task folders (tasks/) import from here, not back.
"""
