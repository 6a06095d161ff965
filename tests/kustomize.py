"""An offline renderer of the kustomize features deploy/k8s uses, so the suite can check the
manifests where neither `kustomize` nor `kubectl` is installed: resources (files and folders),
`namespace`, `images` and JSON patches (RFC 6902) with a target. Anything else in a
kustomization is refused rather than ignored; where kubectl is installed a test compares this
renderer's output with `kubectl kustomize`."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]
_FEATURES = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
_TARGET_FIELDS = {"group", "version", "kind", "name"}


class Unsupported(Exception):
    """The kustomization uses a feature this renderer does not implement."""


def build(folder: Path) -> list[Resource]:
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    if unknown := set(spec) - _FEATURES:
        raise Unsupported(f"{folder}: {', '.join(sorted(unknown))}")
    resources: list[Resource] = []
    for entry in spec.get("resources", []):
        path = folder / entry
        if path.is_dir():
            resources += build(path)
        else:
            resources += [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    ids = [_id(r) for r in resources]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{folder}: a resource is declared twice")
    for patch in spec.get("patches", []):
        _patch(folder, resources, patch)
    if "namespace" in spec:
        for r in resources:
            r["metadata"]["namespace"] = spec["namespace"]
    for image in spec.get("images", []):
        _retag(resources, image)
    return resources


def _id(r: Resource) -> tuple[str, str, str]:
    return r["apiVersion"], r["kind"], r["metadata"]["name"]


def _patch(folder: Path, resources: list[Resource], patch: dict[str, Any]) -> None:
    if unknown := set(patch) - {"path", "patch", "target"}:
        raise Unsupported(f"patch fields {', '.join(sorted(unknown))}")
    text = (folder / patch["path"]).read_text() if "path" in patch else patch["patch"]
    ops = yaml.safe_load(text)
    target = patch.get("target")
    if not isinstance(ops, list) or target is None:
        raise Unsupported("strategic merge patches (only JSON patches with a target are rendered)")
    if unknown := set(target) - _TARGET_FIELDS:
        raise Unsupported(f"patch target fields {', '.join(sorted(unknown))}")
    matched = [r for r in resources if _selects(target, r)]
    if not matched:
        raise ValueError(f"patch {patch.get('path', '(inline)')} matches no resource")
    for r in matched:
        for op in ops:
            _apply(r, op)


def _selects(target: dict[str, str], r: Resource) -> bool:
    group, _, version = r["apiVersion"].rpartition("/")
    # kustomize anchors the name: a regular expression over the whole name.
    return (target.get("kind", r["kind"]) == r["kind"] and target.get("group", group) == group
            and target.get("version", version) == version
            and re.fullmatch(target.get("name", ".*"), r["metadata"]["name"]) is not None)


def _apply(doc: Resource, op: dict[str, Any]) -> None:
    """One RFC 6902 operation: add, remove or replace."""
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    kind = op["op"]
    if kind not in ("add", "remove", "replace"):
        raise Unsupported(f"JSON patch operation {kind}")
    value = copy.deepcopy(op.get("value"))
    if isinstance(node, list):
        if kind == "add":
            node.insert(len(node) if last == "-" else int(last), value)
        elif kind == "remove":
            del node[int(last)]
        else:
            node[int(last)] = value
        return
    if kind != "add" and last not in node:
        raise ValueError(f"{op['path']}: nothing to {kind}")
    if kind == "remove":
        del node[last]
    else:
        node[last] = value


def _retag(resources: list[Resource], image: dict[str, str]) -> None:
    if unknown := set(image) - {"name", "newName", "newTag", "digest"}:
        raise Unsupported(f"image fields {', '.join(sorted(unknown))}")
    for r in resources:
        pod = r.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            name, tag, digest = _split_image(container["image"])
            if name != image["name"]:
                continue
            name = image.get("newName", name)
            tag = image.get("newTag", tag)
            digest = image.get("digest", digest)
            container["image"] = name + (f"@{digest}" if digest else f":{tag}" if tag else "")


def _split_image(image: str) -> tuple[str, str | None, str | None]:
    rest, _, digest = image.partition("@")
    name, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:  # no tag, or the colon was a registry's port
        return rest, None, digest or None
    return name, tag, digest or None
