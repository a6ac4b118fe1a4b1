"""OpenArts' stand-in for ModelArts' ``model_service`` package: the inference base classes."""
