//! User records: a user's password is stored only as the two hashes clients
//! authenticate against (PostgreSQL's MD5 of password and name, and a SCRAM-SHA-256
//! verifier).

use pgwire::api::auth::sasl::scram::{ScramSecret, gen_salted_password};

use super::UserDef;

/// PBKDF2 rounds of each SCRAM verifier.
pub const SCRAM_ITERATIONS: usize = 4096;

/// A user record with both password hashes Basalt can authenticate against, and no
/// other option set.
pub fn make_user(name: &str, password: &str, superuser: bool) -> UserDef {
    let mut user = UserDef {
        name: name.to_string(),
        superuser,
        md5_hex: String::new(),
        scram_salt: vec![],
        scram_iterations: 0,
        scram_stored_key: vec![],
        scram_server_key: vec![],
        create_db: superuser,
        syslog_unrestricted: false,
        password_disabled: false,
        valid_until: None,
        connection_limit: None,
        session_timeout: None,
        settings: Default::default(),
    };
    set_password(&mut user, password);
    user
}

/// Give `user` the password `password`: both hashes change, the plain text is kept
/// nowhere.
pub fn set_password(user: &mut UserDef, password: &str) {
    let salt: [u8; 16] = rand::random();
    let salted = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
    let ScramSecret::Verifier {
        salt,
        iterations,
        stored_key,
        server_key,
    } = ScramSecret::verifier_from_salted_password(salt.to_vec(), salted, SCRAM_ITERATIONS)
    else {
        unreachable!("verifier_from_salted_password returns a verifier")
    };
    user.md5_hex = format!("{:x}", md5::compute(format!("{password}{}", user.name)));
    user.scram_salt = salt;
    user.scram_iterations = iterations as u32;
    user.scram_stored_key = stored_key;
    user.scram_server_key = server_key;
    user.password_disabled = false;
}

/// Give `user` a password known only by its MD5 hash (`PASSWORD 'md5…'`, the hex of
/// `md5(password || username)`): MD5 authentication works, SCRAM cannot.
pub fn set_md5_password(user: &mut UserDef, md5_hex: &str) {
    user.md5_hex = md5_hex.to_ascii_lowercase();
    user.scram_salt = vec![];
    user.scram_iterations = 0;
    user.scram_stored_key = vec![];
    user.scram_server_key = vec![];
    user.password_disabled = false;
}

/// `PASSWORD DISABLE`: no password works any more.
pub fn disable_password(user: &mut UserDef) {
    set_md5_password(user, "");
    user.password_disabled = true;
}

/// Redshift's rules for a clear-text password: 8 to 64 characters, at least one
/// uppercase letter, one lowercase letter and one digit, printable ASCII other than
/// `'`, `"`, `\`, `/`, `@` and space.
pub fn check_password_rules(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if !(8..=64).contains(&n) {
        return Err("Password must be between 8 and 64 characters long.".into());
    }
    if !password.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("Password must contain an uppercase character.".into());
    }
    if !password.chars().any(|c| c.is_ascii_lowercase()) {
        return Err("Password must contain a lowercase character.".into());
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        return Err("Password must contain a number.".into());
    }
    if password
        .chars()
        .any(|c| !('!'..='~').contains(&c) || matches!(c, '\'' | '"' | '\\' | '/' | '@'))
    {
        return Err(
            "Password can only contain printable ASCII characters other than ', \", \\, /, @ and space."
                .into(),
        );
    }
    Ok(())
}
