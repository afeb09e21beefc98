"""`llmops auth …`: who may sign in to the web UI (and vote in a closed arena)."""

from pathlib import Path
from typing import Annotated

import typer

from llmops.commands.common import (
    JsonOption,
    SetOption,
    WorkspaceOption,
    console,
    names_table,
    print_json,
    workspace_from,
)

app = typer.Typer(help="Sign-in: users of the web UI and the arena.", no_args_is_help=True)


@app.command("add-user")
def add_user(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, '_', '.', '@', '-').")],
    workspace: WorkspaceOption = Path("."),
    replace: Annotated[bool, typer.Option(help="Change the password of an existing user.")] = False,
    overrides: SetOption = None,
) -> None:
    """Add a user: prompts for the password (hidden, twice) and writes its hash into llmops.yaml."""
    from llmops import auth

    ws = workspace_from(workspace, overrides)
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    auth.add_user(ws.settings_path, name, password, replace=replace)
    console.print(f"[green]user added[/green] {name} ({ws.settings_path}); a running gateway sees it after a restart",
                  highlight=False)


@app.command("list")
def list_users(
    workspace: WorkspaceOption = Path("."),
    as_json: JsonOption = False,
    overrides: SetOption = None,
) -> None:
    """The users who may sign in (admin with the admin token, then the configured ones) and the arena setting."""
    from llmops import auth

    ws = workspace_from(workspace, overrides)
    settings = ws.settings.auth
    users = [{"user": name, "password": "admin token (.llmops/admin_token)" if name == auth.ADMIN_USER
              else "scrypt hash in llmops.yaml"} for name in auth.user_names(ws)]
    if as_json:
        print_json({"users": users, "open_arena": settings.open_arena, "allowed_origins": settings.allowed_origins})
        return
    console.print(names_table(["user", "password"], [[row["user"], row["password"]] for row in users],
                              title=f"Users of {ws.root}"))
    arena = "open to everyone" if settings.open_arena else "signed-in users only"
    origins = ", ".join(settings.allowed_origins) or "same-origin only"
    console.print(f"arena voting: {arena}; allowed origins: {origins}", highlight=False)
