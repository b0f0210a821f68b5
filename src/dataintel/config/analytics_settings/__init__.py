"""The analytics settings of a project (draft config)."""
