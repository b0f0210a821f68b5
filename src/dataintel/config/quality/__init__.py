"""The quality rules of a project (draft config), deployed with the rest of the config."""
