//! Resolving BlueKing usernames (`receiver__username`, `cc__username`) to mailboxes.

use std::collections::HashMap;

use serde::Deserialize;

use crate::address::Mailbox;

/// Resolves a username to a mailbox.
///
/// Lookups happen during validation, synchronously: a directory backed by a
/// remote service should answer from a cache it keeps fresh. Returning
/// `Ok(None)` means the user does not exist (reported to the caller in
/// `username_check.invalid`); an `Err` means the directory could not answer,
/// and the request fails with ESB code `1306201`.
pub trait UserDirectory: Send + Sync {
    /// The mailbox of `username`, with the user's display name if known.
    fn lookup(&self, username: &str) -> Result<Option<Mailbox>, DirectoryError>;
}

/// The directory could not answer.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DirectoryError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl DirectoryError {
    /// An error with a message for the operator and, optionally, its cause.
    pub fn new(
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        DirectoryError {
            message: message.into(),
            source,
        }
    }
}

/// A directory held in memory, usually loaded from the `[users]` table of a TOML
/// file:
///
/// ```toml
/// [users]
/// admin = "admin@example.com"
/// zhangsan = { email = "zhangsan@example.com", name = "张三" }
/// ```
///
/// Every address is validated when the directory is loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticDirectory {
    users: HashMap<String, Mailbox>,
}

impl StaticDirectory {
    /// An empty directory: every username is unknown.
    pub fn new() -> Self {
        StaticDirectory::default()
    }

    /// Reads the `[users]` table of a TOML document (feature `toml`, on by
    /// default); other tables are ignored, so
    /// the same file can hold the rest of the configuration.
    #[cfg(feature = "toml")]
    pub fn from_toml(text: &str) -> Result<Self, LoadError> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            users: StaticDirectory,
        }
        let file: File = toml::from_str(text).map_err(|error| LoadError(error.to_string()))?;
        Ok(file.users)
    }

    /// Adds or replaces a user.
    pub fn insert(&mut self, username: impl Into<String>, mailbox: Mailbox) {
        self.users.insert(username.into(), mailbox);
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// A users file that cannot be read as a directory.
#[cfg(feature = "toml")]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("users file: {0}")]
pub struct LoadError(String);

impl UserDirectory for StaticDirectory {
    fn lookup(&self, username: &str) -> Result<Option<Mailbox>, DirectoryError> {
        Ok(self.users.get(username).cloned())
    }
}

impl<D: UserDirectory + ?Sized> UserDirectory for &D {
    fn lookup(&self, username: &str) -> Result<Option<Mailbox>, DirectoryError> {
        (**self).lookup(username)
    }
}

impl<D: UserDirectory + ?Sized> UserDirectory for std::sync::Arc<D> {
    fn lookup(&self, username: &str) -> Result<Option<Mailbox>, DirectoryError> {
        (**self).lookup(username)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UserEntry {
    Address(String),
    Named { email: String, name: Option<String> },
}

impl<'de> Deserialize<'de> for StaticDirectory {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = HashMap::<String, UserEntry>::deserialize(deserializer)?;
        let mut users = HashMap::with_capacity(entries.len());
        for (username, entry) in entries {
            let mailbox = match &entry {
                UserEntry::Address(address) => Mailbox::parse(address),
                UserEntry::Named { email, name } => Mailbox::new(name.as_deref(), email),
            }
            .map_err(|error| {
                serde::de::Error::custom(format!("user {username:?}: not a valid address: {error}"))
            })?;
            users.insert(username, mailbox);
        }
        Ok(StaticDirectory { users })
    }
}

#[cfg(all(test, feature = "toml"))]
mod tests {
    use super::*;

    #[test]
    fn loads_both_entry_forms() {
        let directory = StaticDirectory::from_toml(
            r#"
            mail_sender = "ignored@example.com"
            [users]
            admin = "admin@example.com"
            zhangsan = { email = "zhangsan@example.com", name = "张三" }
            lisi = "李四 <lisi@example.com>"
            "#,
        )
        .unwrap();
        assert_eq!(directory.len(), 3);
        let zhangsan = directory.lookup("zhangsan").unwrap().unwrap();
        assert_eq!(zhangsan.name(), Some("张三"));
        assert_eq!(zhangsan.address(), "zhangsan@example.com");
        assert_eq!(
            directory.lookup("lisi").unwrap().unwrap().name(),
            Some("李四")
        );
        assert_eq!(directory.lookup("nobody").unwrap(), None);
    }

    #[test]
    fn rejects_a_bad_address_naming_the_user() {
        let error = StaticDirectory::from_toml("[users]\nbob = \"not an address\"").unwrap_err();
        assert!(error.to_string().contains("\"bob\""), "{error}");
    }

    #[test]
    fn missing_table_is_an_empty_directory() {
        assert!(StaticDirectory::from_toml("").unwrap().is_empty());
    }
}
