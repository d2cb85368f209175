//! The write tools, offered only with `[mcp] write = true` or `mcp --write`: create, append,
//! replace a section, set or remove a frontmatter field, replace an exact text, move (links
//! kept whole), delete (to `.trash/`). Each names the content it expects (`expected_hash`,
//! from `read_note`), is atomic and inside the vault, and becomes its own git commit naming
//! the tool and the client (see [`vaultkeeper_write`]).

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use vaultkeeper_write::{Actor, Writer, Written, edit, frontmatter};

use crate::{McpError, VaultServer};

/// `create_note` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateArgs {
    /// The new note's vault path (`Folder/Note.md`); it must not exist.
    pub path: String,
    /// Its full text.
    pub content: String,
}

/// `append_to_note` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AppendArgs {
    /// The note's vault path.
    pub path: String,
    /// The note's `hash` from `read_note`: refused if the note changed since.
    pub expected_hash: String,
    /// Text to add at the end, on a line of its own.
    pub text: String,
}

/// `replace_section` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SectionArgs {
    /// The note's vault path.
    pub path: String,
    /// The note's `hash` from `read_note`.
    pub expected_hash: String,
    /// The heading's text (`Setup`), or with its level (`## Setup`) when the text occurs twice.
    pub heading: String,
    /// The new text under the heading, up to the next heading of the same or a higher level.
    pub content: String,
}

/// `set_frontmatter_field` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SetFieldArgs {
    /// The note's vault path.
    pub path: String,
    /// The note's `hash` from `read_note`.
    pub expected_hash: String,
    /// The top-level frontmatter key.
    pub key: String,
    /// Its new value (string, number, boolean, list or object).
    pub value: serde_json::Value,
}

/// `remove_frontmatter_field` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RemoveFieldArgs {
    /// The note's vault path.
    pub path: String,
    /// The note's `hash` from `read_note`.
    pub expected_hash: String,
    /// The top-level frontmatter key to remove.
    pub key: String,
}

/// `replace_text` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReplaceArgs {
    /// The note's vault path.
    pub path: String,
    /// The note's `hash` from `read_note`.
    pub expected_hash: String,
    /// The exact text to replace; it must occur exactly once.
    pub old_text: String,
    /// The text to put in its place.
    pub new_text: String,
}

/// `move_note` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct MoveArgs {
    /// The note or folder to move (vault path).
    pub from: String,
    /// Its new vault path; it must not exist.
    pub to: String,
    /// For a note: its `hash` from `read_note` (refused if it changed).
    pub expected_hash: Option<String>,
    /// Only report the move and the link rewrites, write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// `delete_note` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DeleteArgs {
    /// The note's vault path.
    pub path: String,
    /// The note's `hash` from `read_note`.
    pub expected_hash: String,
}

/// The client as `initialize` named it (`name version`).
fn client_of(peer: &Peer<RoleServer>) -> Option<String> {
    peer.peer_info()
        .map(|i| format!("{} {}", i.client_info.name, i.client_info.version))
}

impl VaultServer {
    /// Runs one write off the async threads, as `tool` for the client behind `peer`.
    async fn write(
        &self,
        tool: &str,
        peer: &Peer<RoleServer>,
        f: impl FnOnce(&Writer, &Actor) -> Result<Written, vaultkeeper_write::WriteError>
        + Send
        + 'static,
    ) -> Result<String, McpError> {
        let writer = self.writer().ok_or(McpError::WritesOff)?;
        let actor = Actor {
            via: "mcp".into(),
            tool: tool.to_string(),
            client: client_of(peer),
        };
        crate::tools::blocking(move || Ok(f(&writer, &actor)?)).await
    }
}

#[tool_router(router = write_router, vis = "pub(crate)")]
impl VaultServer {
    #[tool(
        description = "Create a note with the given text (refused if it exists). Returns its path, hash and the git commit made."
    )]
    async fn create_note(
        &self,
        Parameters(a): Parameters<CreateArgs>,
        peer: Peer<RoleServer>,
    ) -> Result<String, McpError> {
        self.write("create_note", &peer, move |w, actor| {
            w.create(&a.path, &a.content, actor)
        })
        .await
    }

    #[tool(
        description = "Append text at the end of a note. Give the hash read_note returned: a note changed since is refused with its current hash. Returns the new hash and the commit."
    )]
    async fn append_to_note(
        &self,
        Parameters(a): Parameters<AppendArgs>,
        peer: Peer<RoleServer>,
    ) -> Result<String, McpError> {
        self.write("append_to_note", &peer, move |w, actor| {
            w.edit(&a.path, &a.expected_hash, actor, |t| {
                Ok(edit::append(t, &a.text))
            })
        })
        .await
    }

    #[tool(
        description = "Replace the text under one heading (up to the next heading of the same or a higher level). Needs the note's hash from read_note."
    )]
    async fn replace_section(
        &self,
        Parameters(a): Parameters<SectionArgs>,
        peer: Peer<RoleServer>,
    ) -> Result<String, McpError> {
        self.write("replace_section", &peer, move |w, actor| {
            w.edit(&a.path, &a.expected_hash, actor, |t| {
                edit::replace_section(t, &a.heading, &a.content)
            })
        })
        .await
    }

    #[tool(
        description = "Set one top-level frontmatter field (added if missing; the frontmatter is created if the note has none). Other lines are kept as they are. Needs the note's hash from read_note."
    )]
    async fn set_frontmatter_field(
        &self,
        Parameters(a): Parameters<SetFieldArgs>,
        peer: Peer<RoleServer>,
    ) -> Result<String, McpError> {
        self.write("set_frontmatter_field", &peer, move |w, actor| {
            w.edit(&a.path, &a.expected_hash, actor, |t| {
                frontmatter::set(t, &a.key, &a.value)
            })
        })
        .await
    }

    #[tool(
        description = "Remove one top-level frontmatter field. Needs the note's hash from read_note."
    )]
    async fn remove_frontmatter_field(
        &self,
        Parameters(a): Parameters<RemoveFieldArgs>,
        peer: Peer<RoleServer>,
    ) -> Result<String, McpError> {
        self.write("remove_frontmatter_field", &peer, move |w, actor| {
            w.edit(&a.path, &a.expected_hash, actor, |t| {
                frontmatter::remove(t, &a.key)
            })
        })
        .await
    }

    #[tool(
        description = "Replace an exact text, which must occur exactly once in the note. Needs the note's hash from read_note."
    )]
    async fn replace_text(
        &self,
        Parameters(a): Parameters<ReplaceArgs>,
        peer: Peer<RoleServer>,
    ) -> Result<String, McpError> {
        self.write("replace_text", &peer, move |w, actor| {
            w.edit(&a.path, &a.expected_hash, actor, |t| {
                edit::replace_text(t, &a.old_text, &a.new_text)
            })
        })
        .await
    }

    #[tool(
        description = "Move or rename a note or a folder, rewriting every wikilink, embed and markdown link that would break, in the form it was written. dry_run lists the changes without writing. One commit holds the move and the rewrites."
    )]
    async fn move_note(
        &self,
        Parameters(a): Parameters<MoveArgs>,
        peer: Peer<RoleServer>,
    ) -> Result<String, McpError> {
        self.write("move_note", &peer, move |w, actor| {
            w.mv(&a.from, &a.to, a.expected_hash.as_deref(), a.dry_run, actor)
        })
        .await
    }

    #[tool(
        description = "Delete a note by moving it to the vault's .trash/ folder (as Obsidian does). Needs the note's hash from read_note."
    )]
    async fn delete_note(
        &self,
        Parameters(a): Parameters<DeleteArgs>,
        peer: Peer<RoleServer>,
    ) -> Result<String, McpError> {
        self.write("delete_note", &peer, move |w, actor| {
            w.delete(&a.path, &a.expected_hash, actor)
        })
        .await
    }
}
