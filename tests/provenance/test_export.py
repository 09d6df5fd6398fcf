"""dotnb export: W3C PROV read back by prov's own readers, and the HTML report."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from prov.model import ProvActivity, ProvAgent, ProvDocument, ProvEntity

from dotnb.cli.app import main
from dotnb.provenance.report import render
from dotnb.provenance.subject import subject_of
from dotnb.provenance.w3c import document, serialize
from dotnb.store.repo import Store
from tests.store.test_content_lineage import Pipeline, step


@pytest.fixture
def pipeline(tmp_path: Path) -> tuple[Store, Pipeline]:
    store = Store.init(tmp_path)
    return store, Pipeline(store)


def records(doc: ProvDocument, kind: type) -> list[object]:
    return [r for r in doc.get_records() if isinstance(r, kind)]


def relations(doc: ProvDocument, name: str) -> set[tuple[str, ...]]:
    found = set()
    for r in doc.get_records():
        if r.get_type().localpart == name.removeprefix("prov:"):
            found.add(tuple(str(v) for _, v in r.formal_attributes if v is not None))
    return found


def test_prov_json_round_trips_through_provs_reader(pipeline: tuple[Store, Pipeline]) -> None:
    store, p = pipeline
    subject = subject_of(store, path="report.json")
    text = serialize(subject, "prov-json")
    doc = ProvDocument.deserialize(content=text, format="json")
    assert doc == document(subject)
    activities = {str(a.identifier) for a in records(doc, ProvActivity)}
    assert activities == {f"run:{r}" for r in (p.prepare, p.train, p.evaluate)}
    entities = {str(e.identifier): e for e in records(doc, ProvEntity)}
    clean = entities[f"blake3:{p.clean}"]
    assert {str(v) for v in clean.get_attribute("dotnb:path")} == {"work/clean.csv", "work/train.csv"}
    assert {str(v) for v in clean.get_attribute("dotnb:hash")} == {p.clean}
    assert [str(a.get_attribute("prov:label").pop()) for a in records(doc, ProvAgent)] == ["tester@box"]
    used = relations(doc, "Usage")
    assert (f"run:{p.train}", f"blake3:{p.clean}") in used
    generated = relations(doc, "Generation")
    assert (f"blake3:{p.clean}", f"run:{p.prepare}") in generated
    assert len(relations(doc, "Association")) == 3
    derived = relations(doc, "Derivation")
    assert (f"blake3:{p.model}", f"blake3:{p.clean}", f"run:{p.train}") in derived
    assert json.loads(text)["prefix"]["blake3"] == "urn:blake3:"


# prov 1.5's RDF reader builds an rdflib ConjunctiveGraph, which rdflib 7 deprecates.
@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
def test_prov_o_json_ld_round_trips_through_provs_rdf_reader(pipeline: tuple[Store, Pipeline]) -> None:
    store, p = pipeline
    subject = subject_of(store, run=p.evaluate)
    text = serialize(subject, "prov-o")
    assert isinstance(json.loads(text), dict)  # JSON-LD
    doc = ProvDocument.deserialize(content=text, format="rdf", rdf_format="json-ld")
    assert doc == document(subject)


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


PAYLOAD = '<img src=x onerror="alert(1)">'
SCRIPT = "</code><script>alert(2)</script>"


def test_the_html_report_is_self_contained_and_escapes_every_user_string(tmp_path: Path) -> None:
    store = Store.init(tmp_path)
    odd = f"data/{PAYLOAD}.csv"
    (tmp_path / "data").mkdir()
    (tmp_path / odd).write_bytes(b"1\n")
    step(
        store,
        f"{SCRIPT}.ipynb",
        [odd],
        {"out.csv": b"2\n"},
        name=PAYLOAD,
        params={PAYLOAD: SCRIPT},
        metrics={"acc": 0.5},
        code=f"x = '{SCRIPT}'\n",
        environment={"user": PAYLOAD, "host": "box"},
    )
    html = render(subject_of(store, path="out.csv"), "2026-12-07T00:00:00+00:00")
    parser = Elements()
    parser.feed(html)
    tags = {tag for tag, _ in parser.tags}
    assert not tags & {"img", "script", "link", "iframe", "object", "embed"}
    assert all(not name.startswith("on") for _, attrs in parser.tags for name, _ in attrs)
    # No network: nothing refers to a remote resource.
    assert "http://" not in html and "https://" not in html
    text = "".join(parser.text)
    assert PAYLOAD in text and SCRIPT in text  # shown as text
    assert "tester" not in text and f"{PAYLOAD}@box" in text
    assert "source: no run wrote these bytes" in text


def test_export_command_writes_each_format(pipeline: tuple[Store, Pipeline], tmp_path: Path) -> None:
    store, p = pipeline
    root = str(store.root)
    for fmt in ("prov-json", "prov-o", "html"):
        out = tmp_path / f"out.{fmt}"
        assert main(["--root", root, "export", f"{root}/report.json", "--format", fmt, "-o", str(out)]) == 0
        assert out.stat().st_size > 0
    doc = ProvDocument.deserialize(content=(tmp_path / "out.prov-json").read_text(), format="json")
    assert len(records(doc, ProvActivity)) == 3
    assert main(["--root", root, "export", "nothing", "--format", "html", "-o", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists() and p.prepare
