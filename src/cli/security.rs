//! Commands for OAuth clients, JWT signing keys and admin accounts (issue 11).

use std::time::Duration;

use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};

use crate::app::AppError;
use crate::auth::AuthError;
use crate::auth::admin::{self, Role};
use crate::config::Config;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum OAuthClientCommand {
    /// Register a client of the client-credentials grant; its secret is printed once.
    #[command(after_help = "Example:\n  c4c-scim-bridge oauth-client create --name entra-prod")]
    Create {
        #[arg(long)]
        name: String,
    },
    /// List clients (never their secrets).
    List,
    /// Revoke a client by id or name: it gets no new tokens and its current ones stop working.
    Revoke { id_or_name: String },
}

#[derive(Debug, Subcommand)]
pub enum SigningKeyCommand {
    /// Make a new ES256 key that signs from now on; the previous keys keep verifying for
    /// --keep-verifying (default: the token lifetime plus clock skew).
    #[command(after_help = "Example:\n  c4c-scim-bridge signing-key rotate")]
    Rotate {
        #[arg(long, value_name = "DURATION")]
        keep_verifying: Option<String>,
    },
    /// List the keys that verify tokens now.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Add a local admin account; the password is read from standard input (one line).
    #[command(
        after_help = "Example:\n  printf '%s\\n' \"$PASSWORD\" | c4c-scim-bridge admin add alice --role operator"
    )]
    Add {
        username: String,
        #[arg(long, value_parser = ["viewer", "operator"], default_value = "viewer")]
        role: String,
    },
    /// List admin accounts.
    List,
    /// Remove an admin account; its sessions end at once.
    Remove { username: String },
    /// Set a new password (read from standard input); the account's sessions end.
    Passwd { username: String },
}

fn auth_error(error: AuthError) -> AppError {
    match error {
        AuthError::Store(error) => AppError::Store(error),
        other => AppError::Usage(other.to_string()),
    }
}

fn format_millis(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| millis.to_string())
}

fn read_password() -> Result<SecretString, AppError> {
    eprintln!("password (one line on standard input):");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|error| AppError::Usage(format!("cannot read the password: {error}")))?;
    Ok(SecretString::from(
        line.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

pub async fn oauth_client(store: &Store, command: OAuthClientCommand) -> Result<(), AppError> {
    match command {
        OAuthClientCommand::Create { name } => {
            let client = crate::auth::oauth::create_client(store, &name)
                .await
                .map_err(auth_error)?;
            println!("client_id:     {}", client.row.client_id);
            println!("client_secret: {}", client.secret.expose_secret());
            eprintln!(
                "client {:?} registered; the secret is shown only now: store it in the identity provider",
                client.row.name
            );
            Ok(())
        }
        OAuthClientCommand::List => {
            println!(
                "{:<38}  {:<24}  {:<20}  {:<20}  status",
                "client_id", "name", "created", "last used"
            );
            for client in store.list_oauth_clients().await? {
                println!(
                    "{:<38}  {:<24}  {:<20}  {:<20}  {}",
                    client.client_id,
                    client.name,
                    format_millis(client.created_at),
                    client
                        .last_used_at
                        .map(format_millis)
                        .unwrap_or_else(|| "never".to_owned()),
                    if client.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    }
                );
            }
            Ok(())
        }
        OAuthClientCommand::Revoke { id_or_name } => {
            match store
                .revoke_oauth_client(&id_or_name, crate::store::now_millis())
                .await?
            {
                0 => Err(AppError::Usage(format!(
                    "no live client with id or name {id_or_name:?}; see `oauth-client list`"
                ))),
                _ => {
                    println!("client {id_or_name:?} revoked");
                    Ok(())
                }
            }
        }
    }
}

pub async fn signing_key(
    store: &Store,
    config: &Config,
    command: SigningKeyCommand,
) -> Result<(), AppError> {
    match command {
        SigningKeyCommand::Rotate { keep_verifying } => {
            let keep = match keep_verifying {
                Some(text) => crate::auth::parse_validity(&text).map_err(auth_error)?,
                None => Duration::from_secs(
                    config
                        .auth
                        .oauth
                        .token_ttl_secs
                        .saturating_add(config.auth.oauth.clock_skew_secs),
                ),
            };
            let kid = crate::auth::jwt::rotate(store, &config.auth.oauth, keep)
                .await
                .map_err(auth_error)?;
            println!(
                "new signing key {kid}; previous keys verify for {} more",
                humantime::format_duration(keep)
            );
            if config.auth.oauth.signing_key_file.is_some() {
                eprintln!(
                    "note: auth.oauth.signing_key_file is set, so that file's key still signs"
                );
            }
            Ok(())
        }
        SigningKeyCommand::List => {
            println!("{:<44}  {:<20}  verifies until", "kid", "created");
            for key in store.live_signing_keys(crate::store::now_millis()).await? {
                println!(
                    "{:<44}  {:<20}  {}",
                    key.kid,
                    format_millis(key.created_at),
                    key.verify_until
                        .map(format_millis)
                        .unwrap_or_else(|| "signing now".to_owned())
                );
            }
            Ok(())
        }
    }
}

pub async fn admin_account(store: &Store, command: AdminCommand) -> Result<(), AppError> {
    match command {
        AdminCommand::Add { username, role } => {
            let role: Role = role.parse().map_err(auth_error)?;
            let password = read_password()?;
            admin::add_user(store, &username, role, &password)
                .await
                .map_err(auth_error)?;
            println!("admin {username:?} added with role {role}");
            Ok(())
        }
        AdminCommand::List => {
            println!(
                "{:<32}  {:<9}  {:<20}  password changed",
                "user", "role", "created"
            );
            for user in store.list_admin_users().await? {
                println!(
                    "{:<32}  {:<9}  {:<20}  {}",
                    user.username,
                    user.role,
                    format_millis(user.created_at),
                    format_millis(user.updated_at)
                );
            }
            Ok(())
        }
        AdminCommand::Remove { username } => {
            admin::remove_user(store, &username)
                .await
                .map_err(auth_error)?;
            println!("admin {username:?} removed; their sessions ended");
            Ok(())
        }
        AdminCommand::Passwd { username } => {
            let password = read_password()?;
            admin::set_password(store, &username, &password)
                .await
                .map_err(auth_error)?;
            println!("password of {username:?} changed; their sessions ended");
            Ok(())
        }
    }
}
