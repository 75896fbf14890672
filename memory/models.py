"""The GSW workspace as pydantic models: entities, roles and states, verb phrases, space and time.

Every role, state, verb phrase and space-time name is stamped with the source it came from (a
turn, a document chunk or a code session) and that source's position `seq`, which is how the
workspace keeps the evolution of an entity over time. Items that cite code carry the blob sha of
each file they cite (`blobs`), so a later change marks them stale instead of serving them as fact.
Space and time nodes are enabled (the released GSW code comments them out).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NONE_ANSWER = "None"
TEXT_PREFIX = "TEXT:"
EntityKind = Literal["person", "place", "time", "object", "event", "file", "symbol", "config",
                     "agent", "thing"]


class Stamped(BaseModel):
    """What every piece of evidence carries: where it came from, when, and what code it cites."""

    model_config = ConfigDict(extra="ignore")
    source: str
    seq: int = 0
    blobs: dict[str, str] = Field(default_factory=dict)
    stale: bool = False


class Role(Stamped):
    """A situation-relevant noun phrase for an entity ('suspect', 'edited file') and its states."""

    role: str
    states: list[str] = Field(default_factory=list)


class Entity(BaseModel):
    """An actor: person, place, object, file, symbol, config key ... with its stamped roles."""

    model_config = ConfigDict(extra="ignore")
    id: str
    name: str
    kind: EntityKind = "thing"
    source: str
    seq: int = 0
    roles: list[Role] = Field(default_factory=list)
    folded: int = 0  # older roles aggregated away (see `compact_roles`), still counted

    def role_keys(self) -> set[tuple[str, str]]:
        """(role, source) pairs already present, so merges do not duplicate them."""
        return {(r.role, r.source) for r in self.roles}

    def compact_roles(self, cap: int) -> bool:
        """Keep at most `cap` roles: a role said again (same text and states, no code cited)
        keeps only its newest mention, then the oldest go; `folded` counts what was dropped.
        A speaker mentioned in every turn would otherwise grow one row without bound."""
        if len(self.roles) <= cap:
            return False
        newest: dict[tuple[str, tuple[str, ...]], Role] = {}
        kept: list[Role] = []
        for role in sorted(self.roles, key=lambda r: (r.seq, r.source), reverse=True):
            if role.blobs:
                kept.append(role)
                continue
            key = (role.role, tuple(role.states))
            if key not in newest:
                newest[key] = role
                kept.append(role)
        kept = sorted(kept[:cap], key=lambda r: (r.seq, r.source))
        self.folded += len(self.roles) - len(kept)
        self.roles = kept
        return True


class Question(BaseModel):
    """A valence question of a verb (Who/What/Where/When ...) and its answers.

    An answer is an entity id, `TEXT:<span>`, or `None` while the question is still open.
    """

    model_config = ConfigDict(extra="ignore")
    id: str
    text: str
    answers: list[str] = Field(default_factory=lambda: [NONE_ANSWER])
    source: str = ""

    @property
    def is_open(self) -> bool:
        """Whether no evidence has answered it yet."""
        return all(a == NONE_ANSWER for a in self.answers)

    @property
    def head(self) -> str:
        """The question word ('who', 'when'), which decides what may answer it."""
        return self.text.split(maxsplit=1)[0].lower() if self.text.strip() else ""


class VerbPhrase(Stamped):
    """An action (explicit or implied by a role) with its valence questions."""

    id: str
    phrase: str
    questions: list[Question] = Field(default_factory=list)


class SpaceTimeNode(BaseModel):
    """A place or a time, whose name may be refined by later sources (`name_history`)."""

    model_config = ConfigDict(extra="ignore")
    id: str
    kind: Literal["space", "time"]
    current_name: str
    name_history: dict[str, str] = Field(default_factory=dict)
    source: str
    seq: int = 0
    entity_ids: list[str] = Field(default_factory=list)


class Workspace(BaseModel):
    """One operator output or the reconciled memory: nodes plus space-time links."""

    model_config = ConfigDict(extra="ignore")
    entities: list[Entity] = Field(default_factory=list)
    verb_phrases: list[VerbPhrase] = Field(default_factory=list)
    space_time: list[SpaceTimeNode] = Field(default_factory=list)

    def entity(self, entity_id: str) -> Entity | None:
        """An entity by id."""
        return next((e for e in self.entities if e.id == entity_id), None)


class Turn(BaseModel):
    """One conversation turn as ingested: `{"id", "speaker", "text", "time", "session"}`."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1)
    speaker: str = ""
    text: str
    time: str | None = None
    session: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


# --- what the LLM Operator must return (JSON schema output) --------------------------------


class OpRole(BaseModel):
    """A role as the model states it."""

    role: str
    states: list[str] = Field(default_factory=list)


class OpEntity(BaseModel):
    """An entity as the model states it, with a chunk-local id such as 'e1'."""

    id: str
    name: str = Field(min_length=1)
    kind: EntityKind = "thing"
    roles: list[OpRole] = Field(default_factory=list)


class OpQuestion(BaseModel):
    """A valence question as the model states it."""

    text: str = Field(min_length=1)
    answers: list[str] = Field(default_factory=lambda: [NONE_ANSWER])


class OpVerb(BaseModel):
    """A verb phrase as the model states it."""

    id: str
    phrase: str = Field(min_length=1)
    questions: list[OpQuestion] = Field(default_factory=list)


class OperatorOutput(BaseModel):
    """The extraction step's output; answers must name an entity of this chunk, TEXT: or None."""

    entity_nodes: list[OpEntity] = Field(default_factory=list)
    verb_phrase_nodes: list[OpVerb] = Field(default_factory=list)

    @model_validator(mode="after")
    def _answers_resolve(self) -> OperatorOutput:
        ids = {e.id for e in self.entity_nodes}
        for verb in self.verb_phrase_nodes:
            for q in verb.questions:
                bad = [a for a in q.answers
                       if a != NONE_ANSWER and not a.startswith(TEXT_PREFIX) and a not in ids]
                if bad:
                    raise ValueError(f"answer {bad[0]!r} of {verb.id} is not an entity id, "
                                     "TEXT:<span> or None")
        return self


class SpaceTimeLink(BaseModel):
    """Entities that share a place or a time in the chunk."""

    linked_entities: list[str] = Field(min_length=1)
    tag_type: Literal["spatial", "temporal"]
    tag_value: str | None = None


class SpaceTimeOutput(BaseModel):
    """The space-time linking step's output."""

    spatio_temporal_links: list[SpaceTimeLink] = Field(default_factory=list)


class CorefOutput(BaseModel):
    """The coreference step's output: the text with pronouns replaced by full names."""

    text: str = Field(min_length=1)


class ContextOutput(BaseModel):
    """The context step's output: a short note situating a chunk in its document."""

    context: str


class VerifierOutput(BaseModel):
    """The entity verifier's output: one boolean per candidate pair, in order."""

    same: list[bool]


class ResolvedAnswer(BaseModel):
    """An open question that new evidence answers."""

    question_id: str
    answer_text: str
    answer_entity_id: str | None = None


class ResolutionOutput(BaseModel):
    """The question-resolution step's output."""

    answers: list[ResolvedAnswer] = Field(default_factory=list)
