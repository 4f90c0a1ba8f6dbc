"""What each feed holds as published: its subscription window, its complete archive pages, and their tallies.

- windows: a part of a line per feed (its newest items, its open page, its
  corrections, and where its entries sit in its published files); a run parses
  only the lines of the feeds it touches;
- pages: each feed's complete pages in the same lines, over ``PAGE_SHARDS``
  parts by the hash of ``<feed>/<page>``; a run reads a page only to correct it;
- tallies: each page in numbers, for the archive indexes and the sitemap.
"""

from __future__ import annotations

from collections.abc import Callable

from digestpub.errors import StorageError
from digestpub.state.files import PartFiles
from digestpub.state.keys import TALLIES_KEY, WINDOWS_KEY, pages_key, pages_shard
from digestpub.state.parts import (
    PageTally,
    Tallies,
    Window,
    page_name,
    page_shard,
    tallies_from_json,
    tallies_to_json,
    window_from_line,
    window_line,
    window_lines,
    windows_file,
)


class FeedRecords:
    def __init__(self, files: PartFiles) -> None:
        self._files = files
        self._windows: _WindowFile | None = None
        self._pages: dict[str, _WindowFile] = {}
        self._tallies: Tallies | None = None
        self.changed: set[str] = set()

    def window(self, feed: str) -> Window:
        """A feed's subscription window; an empty one for a feed not published yet."""
        if self._windows is None:
            self._windows = self._window_file(WINDOWS_KEY)
        return self._windows.window(feed)

    def set_window(self, feed: str, window: Window) -> None:
        self.window(feed)
        assert self._windows is not None
        self._windows.windows[feed] = window
        self.changed.add(WINDOWS_KEY)

    def page(self, feed: str, number: int) -> Window:
        """A complete archive page of a feed: its items and its files as published."""
        name = page_name(feed, number)
        shard = page_shard(name)
        if shard not in self._pages:
            self._pages[shard] = self._window_file(pages_key(shard))
        return self._pages[shard].window(name)

    def set_page(self, feed: str, number: int, window: Window) -> None:
        self.page(feed, number)
        shard = page_shard(page_name(feed, number))
        self._pages[shard].windows[page_name(feed, number)] = window
        self.changed.add(pages_key(shard))

    def tallies(self) -> Tallies:
        """Each feed's pages in numbers, read once a run asks."""
        if self._tallies is None:
            self._tallies = self._files.load(TALLIES_KEY, tallies_from_json) or {}
        return self._tallies

    def set_tallies(self, feed: str, pages: list[PageTally]) -> None:
        tallies = self.tallies()
        if tallies.get(feed) != pages:
            tallies[feed] = pages
            self.changed.add(TALLIES_KEY)

    def serialise(self, key: str) -> bytes:
        if key == WINDOWS_KEY and self._windows is not None:
            return self._windows.serialise()
        if key == TALLIES_KEY:
            return tallies_to_json(self.tallies())
        shard = pages_shard(key)
        assert shard is not None, key
        return self._pages[shard].serialise()

    def _window_file(self, key: str) -> _WindowFile:
        lines = self._files.load(key, window_lines) or {}
        return _WindowFile(lines, lambda error: self._files.damaged(self._files.head.parts.get(key, key), error))


class _WindowFile:
    """One part of window lines, by name: the feeds' windows, or a shard of their complete pages.

    Lines stay bytes until a run touches their feed: most runs touch a few.
    """

    def __init__(self, lines: dict[str, bytes], damaged: Callable[[Exception], StorageError]) -> None:
        self.lines = lines
        self.windows: dict[str, Window] = {}
        self._damaged = damaged

    def window(self, name: str) -> Window:
        if name not in self.windows:
            line = self.lines.get(name)
            try:
                self.windows[name] = Window() if line is None else window_from_line(line)
            except (ValueError, KeyError, TypeError) as error:
                raise self._damaged(error) from error
        return self.windows[name]

    def serialise(self) -> bytes:
        lines = self.lines | {name: window_line(name, window) for name, window in self.windows.items()}
        # A window with nothing in it and nothing published takes no line.
        empty = {name for name, window in self.windows.items() if not window.items and not window.files}
        return windows_file({name: line for name, line in lines.items() if name not in empty})
