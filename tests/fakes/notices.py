"""A notifier that keeps each notice it would post, with the real texts and repeat hold-back."""

from __future__ import annotations

from v28quant.notify import NullNotifier


class Notices(NullNotifier):
    """Keeps what it is given to post (``sent``); repeats are held back as the real one does."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def notify(self, content: str) -> bool:
        """Keep ``content`` as posted."""
        self.sent.append(content)
        return True
