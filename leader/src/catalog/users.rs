//! User records: a user's password is stored only as the two hashes clients
//! authenticate against (PostgreSQL's MD5 of password and name, and a SCRAM-SHA-256
//! verifier).

use pgwire::api::auth::sasl::scram::{ScramSecret, gen_salted_password};

use super::UserDef;

/// PBKDF2 rounds of each SCRAM verifier.
pub const SCRAM_ITERATIONS: usize = 4096;

/// A user record with both password hashes Basalt can authenticate against.
pub fn make_user(name: &str, password: &str, superuser: bool) -> UserDef {
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
    UserDef {
        name: name.to_string(),
        superuser,
        md5_hex: format!("{:x}", md5::compute(format!("{password}{name}"))),
        scram_salt: salt,
        scram_iterations: iterations as u32,
        scram_stored_key: stored_key,
        scram_server_key: server_key,
    }
}
