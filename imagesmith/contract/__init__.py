"""The image contract: every string format that crosses a package boundary, each written and read here.

Standard library only (the doctor imports it inside slim images). ``labels`` (the ``io.imagesmith.*``
keys and their record), ``tags`` (the tag format and reference parsing), ``sm`` (the architecture list
format) and ``plan_json`` (the file between ``images render`` and ``build``, and the templates).
"""
