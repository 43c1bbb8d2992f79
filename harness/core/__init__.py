"""The ground floor: what every other part of the project stands on, and imports nothing of it.

Errors and their one-line messages, languages, the setting rules, the run store (paths, atomic
writes, hashes), progress lines, the parent-process lifeline, and where models and data come from
(the Hub, local folders, the HF cache, a `--data-dir` mirror). May import: nothing of the project.
"""
