//! Authentication: the password checks of start-up (MD5 against the stored MD5 hash,
//! SCRAM-SHA-256 against the stored SCRAM verifier; no password is ever stored), and the
//! admin user created on first start.

use std::sync::Arc;

use async_trait::async_trait;
use pgwire::api::auth::sasl::scram::ScramSecret;
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::{PgWireError, PgWireResult};

use crate::catalog::users::make_user;
use crate::catalog::{CatalogOp, UserDef};
use crate::error::Result;
use crate::plan::engine::Engine;

#[derive(Debug)]
pub(super) struct AuthDb {
    pub(super) engine: Arc<Engine>,
}

impl AuthDb {
    fn user(&self, login: &LoginInfo) -> PgWireResult<Arc<UserDef>> {
        let name = login.user().unwrap_or_default();
        self.engine
            .catalog
            .snapshot()
            .users
            .get(name)
            .cloned()
            // A disabled or expired password fails like a wrong one, and so does an
            // unknown user: a failed login never tells which it was.
            .filter(|u| !u.password_disabled && u.valid_until.is_none_or(|t| t > crate::now_us()))
            .ok_or_else(|| PgWireError::InvalidPassword(name.to_string()))
    }
}

#[async_trait]
impl AuthSource for AuthDb {
    /// MD5: the expected response to a fresh random salt.
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = self.user(login)?;
        let salt: [u8; 4] = rand::random();
        let mut buf = user.md5_hex.clone().into_bytes();
        buf.extend_from_slice(&salt);
        let expected = format!("md5{:x}", md5::compute(buf));
        Ok(Password::new(Some(salt.to_vec()), expected.into_bytes()))
    }

    async fn get_scram_secret(&self, login: &LoginInfo) -> PgWireResult<(ScramSecret, Option<()>)> {
        let user = self.user(login)?;
        Ok((
            ScramSecret::Verifier {
                salt: user.scram_salt.clone(),
                iterations: user.scram_iterations as usize,
                stored_key: user.scram_stored_key.clone(),
                server_key: user.scram_server_key.clone(),
            },
            None,
        ))
    }
}

/// Create the admin user on first start, and reset its password when one is configured.
pub(super) fn bootstrap_admin(engine: &Engine) -> Result<()> {
    let explicit = engine.config.admin_password.is_some();
    let exists = engine.catalog.snapshot().users.contains_key("admin");
    if !exists || explicit {
        let password = engine.config.admin_password()?;
        engine
            .catalog
            .commit(&[CatalogOp::PutUser(make_user("admin", &password, true))])?;
    }
    Ok(())
}
