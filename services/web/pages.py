"""The page manifest: which API calls each page of the desktop site makes (see ``pages.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from configfiles.yamlconf import load_model

PAGES_FILE = Path(__file__).with_name("pages.yaml")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiCall(_Model):
    name: str
    method: Literal["GET", "POST"]
    path: str = Field(pattern=r"^/api/")
    query: dict[str, str] = {}


class Session(_Model):
    guest: ApiCall
    user: ApiCall


class Page(_Model):
    title: str
    session: Session
    calls: list[ApiCall] = Field(min_length=1)


class Manifest(_Model):
    error_message: str
    pages: dict[str, Page]
    actions: dict[str, ApiCall]


def load_manifest(path: Path = PAGES_FILE) -> Manifest:
    return load_model(Manifest, path)
