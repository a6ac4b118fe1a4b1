"""OpenArts: a self-hosted AI development platform that speaks the Huawei Cloud ModelArts API."""

__version__ = "0.1.0"
