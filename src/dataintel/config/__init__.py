"""The config plane: projects, pipelines, feature definitions, deployments, config as code."""
