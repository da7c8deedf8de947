"""Configurations shipped with nirstream: models/, train/ and pipelines/ YAML files."""
