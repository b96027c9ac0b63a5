"""``livepages check``: the app model and its templates, validated without serving.

- ``findings``: :class:`Finding`, its :class:`Code`, and the comments that silence one;
- ``loading``: the app imported with failed registrations collected (``livepages.registration``);
- ``table``: the route table, which ``livepages routes`` prints too;
- ``conflicts``: routes that collide;
- ``templates``: templates parsed with Jinja2 and read as syntax trees;
- ``sources``: lines of classes, functions and fields, and the templates Python renders;
- ``report``: :func:`check`, all of it for one app.
"""

from livepages.checks.findings import Code, Finding
from livepages.checks.report import Report, check

__all__ = ["Code", "Finding", "Report", "check"]
