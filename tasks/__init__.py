"""Task definitions as data: lm-eval task YAML per family, suites, fixtures and their helpers.

Layout (see tasks/generate.py, which writes the per-language YAML of the families in its FAMILIES
table from harness/core/langs.py; a hand-written task YAML anywhere here is read, never rewritten):
  tasks/<family>/_default_template_yaml   shared settings of a family (prompt, metrics, loader)
  tasks/<family>/<task>.yaml              one task per language (or direction), with `metadata:`
  tasks/<family>/utils.py                 the family's `load` (custom_dataset) and scoring hooks
  tasks/suites.yaml                       named suites; tasks/suite_<name>.yaml are their lm-eval groups
  tasks/fixtures/<family>/<flores code>/<split>.jsonl   tiny offline data in the hub formats
  tasks/dataio.py                         data loading (hub or local folder); the sacreBLEU helpers
                                          are harness/evaluation/metrics.py
"""
