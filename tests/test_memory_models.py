"""The GSW workspace models: stamped evidence, valence questions and the Operator's contract."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from peek.memory.models import (
    Entity,
    OperatorOutput,
    Question,
    Role,
    SpaceTimeNode,
    Turn,
    VerbPhrase,
    Workspace,
)


def test_a_workspace_round_trips_with_space_and_time_enabled() -> None:
    ws = Workspace(
        entities=[Entity(id="e1", name="Ezra Edwards", kind="person", source="c1", seq=3,
                         roles=[Role(role="instructor", states=["demonstrating"], source="c1",
                                     seq=3)])],
        verb_phrases=[VerbPhrase(id="v1", phrase="demonstrated", source="c1", seq=3, questions=[
            Question(id="q1", text="Who demonstrated?", answers=["e1"]),
            Question(id="q2", text="Where?", answers=["None"])])],
        space_time=[SpaceTimeNode(id="s1", kind="space", current_name="Bethpage Black Course",
                                  name_history={"c1": "Bethpage Black Course"}, source="c1",
                                  entity_ids=["e1"])])
    again = Workspace.model_validate_json(ws.model_dump_json())
    assert again == ws
    assert again.entity("e1") is not None and again.entity("e1").roles[0].seq == 3
    assert again.verb_phrases[0].questions[1].is_open
    assert again.verb_phrases[0].questions[0].head == "who"


def test_operator_output_rejects_answers_that_name_no_entity() -> None:
    good = {"entity_nodes": [{"id": "e1", "name": "Ezra"}],
            "verb_phrase_nodes": [{"id": "v1", "phrase": "jumped", "questions": [
                {"text": "Who jumped?", "answers": ["e1"]},
                {"text": "Where?", "answers": ["TEXT:the roof"]},
                {"text": "When?", "answers": ["None"]}]}]}
    assert OperatorOutput.model_validate(good).verb_phrase_nodes[0].phrase == "jumped"
    good["verb_phrase_nodes"][0]["questions"][0]["answers"] = ["e7"]
    with pytest.raises(ValidationError, match="'e7' of v1 is not an entity id"):
        OperatorOutput.model_validate(good)


def test_turn_contract_accepts_numeric_ids_and_optional_fields() -> None:
    turn = Turn.model_validate({"id": 7, "speaker": "Ann", "text": "hi"})
    assert (turn.id, turn.time, turn.session) == ("7", None, None)
    with pytest.raises(ValidationError):
        Turn.model_validate({"id": "", "text": "hi"})
