"""The retention policy of a project (draft config) and its last run."""
