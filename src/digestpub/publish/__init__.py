"""The publish use case: new and edited summaries in, changed feeds and pages out.

    source store → read (``listing``, ``entries``) → ``plan`` over the state
    → ``produce`` what changed, and the ``outputs`` beside it → dest store
    → commit the state → ``announce`` to WebSub hubs → report

The CLI and the cloud function both call ``publish()``; ``run`` calls the stages in order.
"""

from digestpub.publish.listing import Progress
from digestpub.publish.options import PublishOptions
from digestpub.publish.run import publish

__all__ = ["Progress", "PublishOptions", "publish"]
