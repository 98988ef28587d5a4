//! Redshift's identity and privilege statements, which sqlparser parses in other
//! dialects' shapes or not at all: `CREATE | ALTER | DROP USER`, `CREATE | ALTER | DROP
//! GROUP`, `GRANT` and `REVOKE`. The dialect's statement hook parses them into an
//! [`AccessStatement`]; forms Basalt does not implement yet (roles, column-level
//! privileges, functions, …) become a 0A000 error naming them, never a statement that
//! quietly does less.

use datafusion::sql::sqlparser::ast::ObjectName;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use super::names::ident_name;
use super::tokens::is_word;
use crate::error::{LeaderError, code};
use crate::sql_err;

/// One parsed identity or privilege statement.
#[derive(Debug, Clone, PartialEq)]
pub enum AccessStatement {
    CreateUser {
        name: String,
        options: Vec<UserOption>,
    },
    AlterUser {
        name: String,
        change: UserChange,
    },
    DropUser {
        if_exists: bool,
        names: Vec<String>,
    },
    CreateGroup {
        name: String,
        users: Vec<String>,
    },
    AlterGroup {
        name: String,
        change: GroupChange,
    },
    DropGroup {
        names: Vec<String>,
    },
    Grant(GrantStatement),
    Revoke {
        grant: GrantStatement,
        /// `REVOKE GRANT OPTION FOR …`: only the right to grant goes.
        grant_option_for: bool,
    },
    CreateRole {
        name: String,
    },
    /// `DROP ROLE r [FORCE | RESTRICT]`.
    DropRole {
        name: String,
        force: bool,
    },
    RenameRole {
        name: String,
        to: String,
    },
    /// `GRANT ROLE r, … TO {user [WITH ADMIN OPTION] | ROLE r2}, …`.
    GrantRole {
        roles: Vec<String>,
        to: Vec<GranteeName>,
        admin_option: bool,
    },
    /// `REVOKE [ADMIN OPTION FOR] ROLE r, … FROM {user | ROLE r2}, …`.
    RevokeRole {
        roles: Vec<String>,
        from: Vec<GranteeName>,
        admin_option_only: bool,
    },
    /// `RESET SESSION AUTHORIZATION` (sqlparser parses the SET form).
    ResetSessionAuthorization,
    /// `ALTER TABLE | VIEW | SCHEMA name OWNER TO user`.
    AlterOwner {
        schema: bool,
        name: ObjectName,
        /// The new owner; None for CURRENT_USER / SESSION_USER.
        owner: Option<String>,
    },
}

/// An option of CREATE USER / ALTER USER.
#[derive(Debug, Clone, PartialEq)]
pub enum UserOption {
    /// `PASSWORD 'text' | 'md5…'`; None for `PASSWORD DISABLE`.
    Password(Option<String>),
    CreateDb(bool),
    /// CREATEUSER (a superuser) / NOCREATEUSER.
    CreateUser(bool),
    /// `SYSLOG ACCESS UNRESTRICTED` (true) / `RESTRICTED`.
    SyslogUnrestricted(bool),
    InGroup(Vec<String>),
    /// `VALID UNTIL 'timestamp'` as written (`'infinity'` included).
    ValidUntil(String),
    /// `CONNECTION LIMIT n`; None for UNLIMITED.
    ConnectionLimit(Option<u32>),
    /// `SESSION TIMEOUT n` seconds.
    SessionTimeout(u32),
}

/// What ALTER USER changes.
#[derive(Debug, Clone, PartialEq)]
pub enum UserChange {
    Options(Vec<UserOption>),
    RenameTo(String),
    /// `SET name TO value` (None for `TO DEFAULT`).
    Set(String, Option<String>),
    Reset(String),
}

/// What ALTER GROUP changes.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupChange {
    Add(Vec<String>),
    Drop(Vec<String>),
    RenameTo(String),
}

/// `GRANT privileges ON objects TO grantees` (REVOKE has the same parts).
#[derive(Debug, Clone, PartialEq)]
pub struct GrantStatement {
    /// Keywords as written (upper case); empty for `ALL [PRIVILEGES]`.
    pub privileges: Vec<String>,
    pub objects: GrantObjects,
    pub grantees: Vec<GranteeName>,
    /// `WITH GRANT OPTION` (GRANT only).
    pub with_grant_option: bool,
}

/// What a GRANT names.
#[derive(Debug, Clone, PartialEq)]
pub enum GrantObjects {
    Tables(Vec<ObjectName>),
    AllTablesInSchema(Vec<String>),
    Schemas(Vec<String>),
    Databases(Vec<String>),
}

/// Who a GRANT names.
#[derive(Debug, Clone, PartialEq)]
pub enum GranteeName {
    Public,
    User(String),
    Group(String),
    /// `ROLE r` (refused until roles exist).
    Role(String),
}

/// Whether the statement at `parser` is one of [`AccessStatement`]'s (or a form of one
/// Basalt refuses).
pub fn is_access_statement(parser: &Parser) -> bool {
    let first = parser.peek_token();
    let second = parser.peek_nth_token(1);
    if is_owner_change(parser) || is_reset_session_authorization(parser) {
        return true;
    }
    (is_word(&first, "GRANT") || is_word(&first, "REVOKE"))
        || ((is_word(&first, "CREATE") || is_word(&first, "ALTER") || is_word(&first, "DROP"))
            && (is_word(&second, "USER") || is_word(&second, "GROUP") || is_word(&second, "ROLE")))
}

fn is_reset_session_authorization(parser: &Parser) -> bool {
    is_word(&parser.peek_token(), "RESET")
        && is_word(&parser.peek_nth_token(1), "SESSION")
        && is_word(&parser.peek_nth_token(2), "AUTHORIZATION")
}

/// `ALTER TABLE | VIEW | SCHEMA name OWNER TO …` (the name may be qualified).
fn is_owner_change(parser: &Parser) -> bool {
    let kind = parser.peek_nth_token(1);
    if !is_word(&parser.peek_token(), "ALTER")
        || !(is_word(&kind, "TABLE") || is_word(&kind, "VIEW") || is_word(&kind, "SCHEMA"))
    {
        return false;
    }
    // ALTER kind a [. b [. c]] OWNER TO: the name's parts alternate with dots.
    let mut i = 2;
    while parser.peek_nth_token(i + 1).token == Token::Period && i < 6 {
        i += 2;
    }
    is_word(&parser.peek_nth_token(i + 1), "OWNER") && is_word(&parser.peek_nth_token(i + 2), "TO")
}

fn parse_owner_change(parser: &mut Parser) -> Result<AccessStatement, ParserError> {
    parser.next_token();
    let schema = is_word(&parser.next_token(), "SCHEMA");
    let name = parser.parse_object_name(false)?;
    if !(word(parser, "OWNER") && parser.parse_keyword(Keyword::TO)) {
        return parser.expected("OWNER TO", parser.peek_token());
    }
    let owner = if word(parser, "CURRENT_USER") || word(parser, "SESSION_USER") {
        None
    } else {
        Some(self::name(parser)?)
    };
    Ok(AccessStatement::AlterOwner {
        schema,
        name,
        owner,
    })
}

/// The statement at `parser`, which [`is_access_statement`] recognised. The outer error
/// is a syntax error; the inner one a form Basalt does not implement (0A000).
pub fn parse_access(
    parser: &mut Parser,
) -> Result<Result<AccessStatement, LeaderError>, ParserError> {
    if is_owner_change(parser) {
        return parse_owner_change(parser).map(Ok);
    }
    if is_reset_session_authorization(parser) {
        for _ in 0..3 {
            parser.next_token();
        }
        return Ok(Ok(AccessStatement::ResetSessionAuthorization));
    }
    let verb = parser.next_token().token.to_string().to_ascii_uppercase();
    match verb.as_str() {
        "GRANT" if is_word(&parser.peek_token(), "ROLE") => {
            parser.next_token();
            let roles = names(parser)?;
            if !parser.parse_keyword(Keyword::TO) {
                return parser.expected("TO", parser.peek_token());
            }
            let (to, admin_option) = grantees(parser)?;
            let admin_option = admin_option
                || parser.parse_keywords(&[Keyword::WITH, Keyword::ADMIN, Keyword::OPTION]);
            Ok(Ok(AccessStatement::GrantRole {
                roles,
                to,
                admin_option,
            }))
        }
        "GRANT" => Ok(parse_grant(parser)?.map(AccessStatement::Grant)),
        "REVOKE"
            if is_word(&parser.peek_token(), "ROLE")
                || (is_word(&parser.peek_token(), "ADMIN")
                    && is_word(&parser.peek_nth_token(3), "ROLE")) =>
        {
            let admin_option_only =
                parser.parse_keywords(&[Keyword::ADMIN, Keyword::OPTION, Keyword::FOR]);
            parser.next_token();
            let roles = names(parser)?;
            if !parser.parse_keyword(Keyword::FROM) {
                return parser.expected("FROM", parser.peek_token());
            }
            let (from, _) = grantees(parser)?;
            if let Some(refused) = cascade_or_restrict(parser) {
                return Ok(Err(refused));
            }
            Ok(Ok(AccessStatement::RevokeRole {
                roles,
                from,
                admin_option_only,
            }))
        }
        "REVOKE" => {
            let grant_option_for =
                parser.parse_keywords(&[Keyword::GRANT, Keyword::OPTION, Keyword::FOR]);
            Ok(parse_revoke(parser)?.map(|grant| AccessStatement::Revoke {
                grant,
                grant_option_for,
            }))
        }
        _ => {
            let noun = parser.next_token().token.to_string().to_ascii_uppercase();
            match (verb.as_str(), noun.as_str()) {
                ("CREATE", "ROLE") => {
                    let name = name(parser)?;
                    if word(parser, "EXTERNALID") {
                        skip_statement(parser);
                        return Ok(Err(sql_err!(
                            code::FEATURE_NOT_SUPPORTED,
                            "EXTERNALID is not supported yet"
                        )));
                    }
                    Ok(Ok(AccessStatement::CreateRole { name }))
                }
                ("DROP", "ROLE") => {
                    let name = name(parser)?;
                    let force = word(parser, "FORCE");
                    if !force {
                        let _ = parser.parse_keyword(Keyword::RESTRICT);
                    }
                    Ok(Ok(AccessStatement::DropRole { name, force }))
                }
                ("ALTER", "ROLE") => {
                    let name = name(parser)?;
                    if parser.parse_keywords(&[Keyword::RENAME, Keyword::TO]) {
                        let to = self::name(parser)?;
                        return Ok(Ok(AccessStatement::RenameRole { name, to }));
                    }
                    skip_statement(parser);
                    Ok(Err(sql_err!(
                        code::FEATURE_NOT_SUPPORTED,
                        "ALTER ROLE is supported only as ALTER ROLE … RENAME TO"
                    )))
                }
                ("CREATE", "USER") => {
                    let name = name(parser)?;
                    let options = user_options(parser)?;
                    Ok(options.map(|options| AccessStatement::CreateUser { name, options }))
                }
                ("ALTER", "USER") => {
                    let name = name(parser)?;
                    Ok(alter_user(parser)?
                        .map(|change| AccessStatement::AlterUser { name, change }))
                }
                ("DROP", "USER") => {
                    let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
                    let names = names(parser)?;
                    Ok(Ok(AccessStatement::DropUser { if_exists, names }))
                }
                ("CREATE", "GROUP") => {
                    let name = name(parser)?;
                    let _ = parser.parse_keyword(Keyword::WITH);
                    let users = if parser.parse_keyword(Keyword::USER) {
                        names(parser)?
                    } else {
                        vec![]
                    };
                    Ok(Ok(AccessStatement::CreateGroup { name, users }))
                }
                ("ALTER", "GROUP") => {
                    let name = name(parser)?;
                    let change = if parser.parse_keywords(&[Keyword::ADD, Keyword::USER]) {
                        GroupChange::Add(names(parser)?)
                    } else if parser.parse_keywords(&[Keyword::DROP, Keyword::USER]) {
                        GroupChange::Drop(names(parser)?)
                    } else if parser.parse_keywords(&[Keyword::RENAME, Keyword::TO]) {
                        GroupChange::RenameTo(self::name(parser)?)
                    } else {
                        return parser
                            .expected("ADD USER, DROP USER or RENAME TO", parser.peek_token());
                    };
                    Ok(Ok(AccessStatement::AlterGroup { name, change }))
                }
                ("DROP", "GROUP") => Ok(Ok(AccessStatement::DropGroup {
                    names: names(parser)?,
                })),
                _ => parser.expected("USER, GROUP or ROLE", parser.peek_token()),
            }
        }
    }
}

/// Consume the rest of a statement Basalt refuses, so the next one parses.
fn skip_statement(parser: &mut Parser) {
    while !matches!(parser.peek_token().token, Token::SemiColon | Token::EOF) {
        parser.next_token();
    }
}

fn name(parser: &mut Parser) -> Result<String, ParserError> {
    Ok(ident_name(&parser.parse_identifier()?))
}

fn names(parser: &mut Parser) -> Result<Vec<String>, ParserError> {
    let mut out = vec![name(parser)?];
    while parser.consume_token(&Token::Comma) {
        out.push(name(parser)?);
    }
    Ok(out)
}

/// Consume the unquoted word `w` if it is next.
fn word(parser: &mut Parser, w: &str) -> bool {
    if is_word(&parser.peek_token(), w) {
        parser.next_token();
        true
    } else {
        false
    }
}

fn unsigned(parser: &mut Parser) -> Result<u32, ParserError> {
    let t = parser.next_token();
    match &t.token {
        Token::Number(n, _) => n
            .parse()
            .map_err(|_| ParserError::ParserError(format!("Expected: a number, found: {n}"))),
        _ => parser.expected("a number", t),
    }
}

/// The options of CREATE USER / ALTER USER, up to the end of the statement.
fn user_options(parser: &mut Parser) -> Result<Result<Vec<UserOption>, LeaderError>, ParserError> {
    let _ = parser.parse_keyword(Keyword::WITH);
    let mut options = vec![];
    loop {
        let option = if word(parser, "PASSWORD") {
            if word(parser, "DISABLE") {
                UserOption::Password(None)
            } else {
                UserOption::Password(Some(parser.parse_literal_string()?))
            }
        } else if word(parser, "CREATEDB") {
            UserOption::CreateDb(true)
        } else if word(parser, "NOCREATEDB") {
            UserOption::CreateDb(false)
        } else if word(parser, "CREATEUSER") {
            UserOption::CreateUser(true)
        } else if word(parser, "NOCREATEUSER") {
            UserOption::CreateUser(false)
        } else if word(parser, "SYSLOG") {
            if !word(parser, "ACCESS") {
                return parser.expected("ACCESS", parser.peek_token());
            }
            if word(parser, "UNRESTRICTED") {
                UserOption::SyslogUnrestricted(true)
            } else if word(parser, "RESTRICTED") {
                UserOption::SyslogUnrestricted(false)
            } else {
                return parser.expected("RESTRICTED or UNRESTRICTED", parser.peek_token());
            }
        } else if parser.parse_keywords(&[Keyword::IN, Keyword::GROUP]) {
            UserOption::InGroup(names(parser)?)
        } else if word(parser, "VALID") {
            if !word(parser, "UNTIL") {
                return parser.expected("UNTIL", parser.peek_token());
            }
            UserOption::ValidUntil(parser.parse_literal_string()?)
        } else if word(parser, "CONNECTION") {
            if !word(parser, "LIMIT") {
                return parser.expected("LIMIT", parser.peek_token());
            }
            if word(parser, "UNLIMITED") {
                UserOption::ConnectionLimit(None)
            } else {
                UserOption::ConnectionLimit(Some(unsigned(parser)?))
            }
        } else if word(parser, "SESSION") {
            if !word(parser, "TIMEOUT") {
                return parser.expected("TIMEOUT", parser.peek_token());
            }
            UserOption::SessionTimeout(unsigned(parser)?)
        } else if word(parser, "EXTERNALID") {
            skip_statement(parser);
            return Ok(Err(sql_err!(
                code::FEATURE_NOT_SUPPORTED,
                "EXTERNALID is not supported yet"
            )));
        } else if matches!(parser.peek_token().token, Token::SemiColon | Token::EOF) {
            break;
        } else {
            return parser.expected("a user option", parser.peek_token());
        };
        options.push(option);
    }
    Ok(Ok(options))
}

fn alter_user(parser: &mut Parser) -> Result<Result<UserChange, LeaderError>, ParserError> {
    if parser.parse_keywords(&[Keyword::RENAME, Keyword::TO]) {
        return Ok(Ok(UserChange::RenameTo(name(parser)?)));
    }
    if parser.parse_keyword(Keyword::SET) {
        let param = setting_name(parser)?;
        if !parser.parse_keyword(Keyword::TO) && !parser.consume_token(&Token::Eq) {
            return parser.expected("TO or =", parser.peek_token());
        }
        if parser.parse_keyword(Keyword::DEFAULT) {
            return Ok(Ok(UserChange::Set(param, None)));
        }
        // A list (`search_path TO a, b`) is kept as SET would keep it: joined by ", ".
        let mut values = vec![];
        loop {
            let t = parser.next_token();
            values.push(match t.token {
                Token::SingleQuotedString(s) => s,
                Token::Number(n, _) => n,
                Token::Word(w) if w.quote_style.is_some() => w.value,
                Token::Word(w) => w.value.to_lowercase(),
                _ => return parser.expected("a value", t),
            });
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
        return Ok(Ok(UserChange::Set(param, Some(values.join(", ")))));
    }
    if parser.parse_keyword(Keyword::RESET) {
        return Ok(Ok(UserChange::Reset(setting_name(parser)?)));
    }
    Ok(user_options(parser)?.map(UserChange::Options))
}

fn setting_name(parser: &mut Parser) -> Result<String, ParserError> {
    Ok(parser.parse_identifier()?.value.to_lowercase())
}

/// `privileges ON objects TO grantees [WITH GRANT OPTION]`.
fn parse_grant(parser: &mut Parser) -> Result<Result<GrantStatement, LeaderError>, ParserError> {
    let (privileges, objects) = match privileges_on(parser)? {
        Ok(parts) => parts,
        Err(e) => return Ok(Err(e)),
    };
    if !parser.parse_keyword(Keyword::TO) {
        return parser.expected("TO", parser.peek_token());
    }
    let (grantees, with_grant_option) = grantees(parser)?;
    if parser.parse_keywords(&[Keyword::WITH, Keyword::GRANT, Keyword::OPTION]) {
        return Ok(Ok(GrantStatement {
            privileges,
            objects,
            grantees,
            with_grant_option: true,
        }));
    }
    Ok(Ok(GrantStatement {
        privileges,
        objects,
        grantees,
        with_grant_option,
    }))
}

/// `privileges ON objects FROM grantees [RESTRICT]`.
fn parse_revoke(parser: &mut Parser) -> Result<Result<GrantStatement, LeaderError>, ParserError> {
    let (privileges, objects) = match privileges_on(parser)? {
        Ok(parts) => parts,
        Err(e) => return Ok(Err(e)),
    };
    if !parser.parse_keyword(Keyword::FROM) {
        return parser.expected("FROM", parser.peek_token());
    }
    let (grantees, _) = grantees(parser)?;
    if let Some(refused) = cascade_or_restrict(parser) {
        return Ok(Err(refused));
    }
    Ok(Ok(GrantStatement {
        privileges,
        objects,
        grantees,
        with_grant_option: false,
    }))
}

/// A REVOKE's trailing `RESTRICT` (the default, as Redshift's: only what the revoker
/// granted goes) or `CASCADE`, which would also revoke what the grantees granted on and
/// needs grant chains the catalog does not keep: refused.
fn cascade_or_restrict(parser: &mut Parser) -> Option<LeaderError> {
    if parser.parse_keyword(Keyword::CASCADE) {
        return Some(sql_err!(
            code::FEATURE_NOT_SUPPORTED,
            "REVOKE … CASCADE is not supported yet"
        ));
    }
    let _ = parser.parse_keyword(Keyword::RESTRICT);
    None
}

const PRIVILEGE_WORDS: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "DROP",
    "REFERENCES",
    "TRUNCATE",
    "ALTER",
    "CREATE",
    "USAGE",
    "TEMP",
    "TEMPORARY",
];

type PrivilegesOn = (Vec<String>, GrantObjects);

fn privileges_on(parser: &mut Parser) -> Result<Result<PrivilegesOn, LeaderError>, ParserError> {
    let mut privileges = vec![];
    if parser.parse_keyword(Keyword::ALL) {
        let _ = parser.parse_keyword(Keyword::PRIVILEGES);
        if parser.peek_token().token == Token::LParen {
            skip_statement(parser);
            return Ok(Err(column_level()));
        }
    } else {
        loop {
            let t = parser.peek_token();
            let Some(w) = PRIVILEGE_WORDS.iter().find(|w| is_word(&t, w)) else {
                // `GRANT ROLE r TO …`, `GRANT ASSUMEROLE …`, system privileges, …
                let what = t.token.to_string().to_ascii_uppercase();
                skip_statement(parser);
                return Ok(Err(sql_err!(
                    code::FEATURE_NOT_SUPPORTED,
                    "GRANT {what} is not supported yet"
                )));
            };
            parser.next_token();
            privileges.push(if *w == "TEMPORARY" {
                "TEMP".into()
            } else {
                w.to_string()
            });
            if parser.peek_token().token == Token::LParen {
                skip_statement(parser);
                return Ok(Err(column_level()));
            }
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
    }
    if !parser.parse_keyword(Keyword::ON) {
        // `GRANT CREATE USER, DROP USER, … TO ROLE r`.
        skip_statement(parser);
        return Ok(Err(sql_err!(
            code::FEATURE_NOT_SUPPORTED,
            "system privileges are not supported yet"
        )));
    }
    let objects = if parser.parse_keyword(Keyword::SCHEMA) {
        GrantObjects::Schemas(names(parser)?)
    } else if parser.parse_keyword(Keyword::DATABASE) {
        GrantObjects::Databases(names(parser)?)
    } else if parser.parse_keywords(&[Keyword::ALL, Keyword::TABLES, Keyword::IN, Keyword::SCHEMA])
    {
        GrantObjects::AllTablesInSchema(names(parser)?)
    } else if [
        "FUNCTION",
        "PROCEDURE",
        "LANGUAGE",
        "ALL",
        "DATASHARE",
        "MODEL",
    ]
    .iter()
    .any(|w| is_word(&parser.peek_token(), w))
    {
        let what = parser.peek_token().token.to_string().to_ascii_uppercase();
        skip_statement(parser);
        return Ok(Err(sql_err!(
            code::FEATURE_NOT_SUPPORTED,
            "privileges ON {what} are not supported yet"
        )));
    } else {
        let _ = parser.parse_keyword(Keyword::TABLE);
        let mut tables = vec![parser.parse_object_name(false)?];
        while parser.consume_token(&Token::Comma) {
            tables.push(parser.parse_object_name(false)?);
        }
        GrantObjects::Tables(tables)
    };
    Ok(Ok((privileges, objects)))
}

fn column_level() -> LeaderError {
    sql_err!(
        code::FEATURE_NOT_SUPPORTED,
        "column-level privileges are not supported yet"
    )
}

/// `{[USER] name [WITH GRANT OPTION] | GROUP g | ROLE r | PUBLIC} [, …]`; whether any
/// user grantee had WITH GRANT OPTION.
fn grantees(parser: &mut Parser) -> Result<(Vec<GranteeName>, bool), ParserError> {
    let mut out = vec![];
    let mut grant_option = false;
    loop {
        if parser.parse_keyword(Keyword::PUBLIC) {
            out.push(GranteeName::Public);
        } else if parser.parse_keyword(Keyword::GROUP) {
            out.push(GranteeName::Group(name(parser)?));
        } else if parser.parse_keyword(Keyword::ROLE) {
            out.push(GranteeName::Role(name(parser)?));
        } else {
            let _ = parser.parse_keyword(Keyword::USER);
            out.push(GranteeName::User(name(parser)?));
            if parser.peek_token().token != Token::Comma
                && is_word(&parser.peek_token(), "WITH")
                && is_word(&parser.peek_nth_token(1), "GRANT")
            {
                grant_option |=
                    parser.parse_keywords(&[Keyword::WITH, Keyword::GRANT, Keyword::OPTION]);
            } else if is_word(&parser.peek_token(), "WITH")
                && is_word(&parser.peek_nth_token(1), "ADMIN")
            {
                grant_option |=
                    parser.parse_keywords(&[Keyword::WITH, Keyword::ADMIN, Keyword::OPTION]);
            }
        }
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    Ok((out, grant_option))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_sql;

    fn access(sql: &str) -> Option<AccessStatement> {
        parse_sql(sql).unwrap().remove(0).1.access
    }

    #[test]
    fn parses_redshifts_forms() {
        assert_eq!(
            access(
                "CREATE USER Alice WITH PASSWORD 'Secret123' CREATEDB IN GROUP g1, g2 VALID UNTIL '2027-01-01'"
            ),
            Some(AccessStatement::CreateUser {
                name: "alice".into(),
                options: vec![
                    UserOption::Password(Some("Secret123".into())),
                    UserOption::CreateDb(true),
                    UserOption::InGroup(vec!["g1".into(), "g2".into()]),
                    UserOption::ValidUntil("2027-01-01".into()),
                ],
            })
        );
        assert_eq!(
            access(
                "grant select, insert on table s.t, u to group g, bob with grant option, public"
            ),
            Some(AccessStatement::Grant(GrantStatement {
                privileges: vec!["SELECT".into(), "INSERT".into()],
                objects: GrantObjects::Tables(vec![
                    ObjectName::from(vec![
                        datafusion::sql::sqlparser::ast::Ident::new("s"),
                        datafusion::sql::sqlparser::ast::Ident::new("t"),
                    ]),
                    ObjectName::from(vec![datafusion::sql::sqlparser::ast::Ident::new("u")]),
                ]),
                grantees: vec![
                    GranteeName::Group("g".into()),
                    GranteeName::User("bob".into()),
                    GranteeName::Public,
                ],
                with_grant_option: true,
            }))
        );
        assert!(matches!(
            access("alter table s.t owner to bob"),
            Some(AccessStatement::AlterOwner { schema: false, owner: Some(o), .. }) if o == "bob"
        ));
        // A column called owner is no owner change.
        assert_eq!(access("alter table t rename column owner to x"), None);
        assert_eq!(access("select 1"), None);
    }

    #[test]
    fn refuses_what_it_does_not_implement() {
        for (sql, message) in [
            (
                "create role r externalid 'x'",
                "EXTERNALID is not supported yet",
            ),
            (
                "grant create user to role r",
                "system privileges are not supported yet",
            ),
            (
                "grant select (a) on t to bob",
                "column-level privileges are not supported yet",
            ),
            (
                "grant execute on function f() to bob",
                "GRANT EXECUTE is not supported yet",
            ),
            (
                "kill 1",
                "KILL is not supported; use pg_terminate_backend(pid)",
            ),
        ] {
            let err = parse_sql(sql).unwrap_err();
            assert_eq!(
                err.sqlstate(),
                (code::FEATURE_NOT_SUPPORTED, message.into()),
                "{sql}"
            );
        }
    }
}
