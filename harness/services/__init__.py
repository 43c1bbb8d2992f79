"""Services around a run: what checks, fetches and measures its inputs across tasks and trainers
(`harness doctor`, `harness fetch`, the pre-flight plan, what a suite and trainer require, the
held-out loss). May import: harness.core, harness.engines, harness.evaluation, tasks, trainers and
harness.trainer_api; never reports or the app.
"""
