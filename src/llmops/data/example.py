"""One template-mode Self-Instruct task: its type, instruction, optional input and the answer."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    task_type: str
    instruction: str
    input: str
    output: str

    @property
    def prompt(self) -> str:
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction
