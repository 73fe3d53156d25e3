"""PLACEHOLDER until the web helper's EventHub lands (merge takes theirs)."""


class EventHub:
    def publish(self, kind: str, data: dict) -> None:
        pass
