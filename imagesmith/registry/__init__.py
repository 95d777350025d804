"""The OCI distribution client: manifests, config blobs and digests read from a registry without pulling.

The only package that speaks HTTP to a registry (see docs/images.md). Standard library only.
"""
