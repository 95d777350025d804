"""imagesmith: curated GPU base images, project templates, a pod doctor and an instance picker."""

__version__ = "0.1.0"
