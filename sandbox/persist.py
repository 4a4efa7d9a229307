"""Keeping the sandbox's chats across restarts: users, chats, messages and the files they show,
in one JSON file (file contents in a folder beside it, written once each).

Only what a person sees on the page is kept. Pending updates, queries and the call log start
empty, as they would after Telegram had delivered everything before the restart.

    keeper = ChatKeeper(Path("data/sandbox-chats.json"))
    keeper.load_into(state)          # at start (nothing happens when the file does not exist)
    keeper.save_if_changed(state)    # whenever convenient; writes only after a change
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

from sandbox.media import StoredFile
from sandbox.state import Chat, SandboxState, User

log = logging.getLogger(__name__)

FORMAT = "rnnbot-sandbox-chats/1"


class ChatKeeper:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.files_dir = self.path.with_name(self.path.name + ".files")
        self._saved: tuple[int, int] | None = None  # (id(state), state.version) last written

    def load_into(self, state: SandboxState) -> bool:
        """Restore a saved sandbox into a fresh `state`; False when there is nothing (readable) to restore."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as exc:
            log.warning("sandbox chats: cannot read %s (%s); starting empty", self.path, exc)
            return False
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            log.warning("sandbox chats: %s is not a saved sandbox; starting empty", self.path)
            return False
        for user in data["users"]:
            state.users[user["id"]] = User(**user)
        for chat in data["chats"]:
            state.add_chat(Chat(**chat))
        for chat_id, messages in data["messages"].items():
            state.messages[int(chat_id)] = {m["message_id"]: m for m in messages}
        state.next_message_ids.update({int(k): v for k, v in data["next_message_ids"].items()})
        state.reply_keyboards.update({int(k): v for k, v in data.get("reply_keyboards", {}).items()})
        for meta in data["files"]:
            try:
                content = (self.files_dir / meta["file_id"]).read_bytes()
            except OSError:
                continue  # a photo whose bytes are gone shows as a broken image; the rest is intact
            state.files[meta["file_id"]] = StoredFile(data=content, **meta)
        state.next_file_number = max(state.next_file_number, int(data.get("next_file_number", 1)))
        state.changed()
        self._saved = (id(state), state.version)
        log.info("sandbox chats: restored %d messages in %d chats from %s",
                 sum(len(m) for m in state.messages.values()), len(state.messages), self.path)
        return True

    def save_if_changed(self, state: SandboxState) -> bool:
        if self._saved == (id(state), state.version):
            return False
        self.save(state)
        return True

    def save(self, state: SandboxState) -> None:
        """Write the file atomically (a crash leaves the previous one); file bytes first."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.files_dir.mkdir(exist_ok=True)
        metas = []
        for stored in state.files.values():
            target = self.files_dir / stored.file_id
            if not target.exists():
                _atomic_write(target, stored.data)
            metas.append({k: v for k, v in dataclasses.asdict(stored).items() if k != "data"})
        data = {
            "format": FORMAT,
            "users": [dataclasses.asdict(u) for u in state.users.values()],
            "chats": [dataclasses.asdict(c) for c in state.chats.values()],
            "messages": {str(k): list(v.values()) for k, v in state.messages.items() if v},
            "next_message_ids": {str(k): v for k, v in state.next_message_ids.items()},
            "reply_keyboards": {str(k): v for k, v in state.reply_keyboards.items() if v},
            "files": metas,
            "next_file_number": state.next_file_number,
        }
        _atomic_write(self.path, json.dumps(data, ensure_ascii=False).encode("utf-8"))
        for leftover in set(os.listdir(self.files_dir)) - {m["file_id"] for m in metas}:
            (self.files_dir / leftover).unlink(missing_ok=True)  # after a reset
        self._saved = (id(state), state.version)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
