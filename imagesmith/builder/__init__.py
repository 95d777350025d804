"""``imagesmith build``: build the rendered image plan on a Docker engine, parents first, smoke-tested."""
