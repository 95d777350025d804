"""Parsers of the providers' own published price and spec formats, each returning catalog rows."""
