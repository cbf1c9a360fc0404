@testable import CairnPostgres
import Testing

@Suite struct SQLScriptTests {
    @Test(arguments: [
        ("CREATE TABLE a (x int); CREATE TABLE b (y int);", ["CREATE TABLE a (x int)", "CREATE TABLE b (y int)"]),
        ("SELECT 1", ["SELECT 1"]),
        ("  ;; \n ; ", []),
        ("-- only a comment; still a comment\n", []),
        ("SELECT ';' AS s; SELECT 2", ["SELECT ';' AS s", "SELECT 2"]),
        ("SELECT 'it''s; fine'; SELECT 3", ["SELECT 'it''s; fine'", "SELECT 3"]),
        ("SELECT \"we;ird\" FROM t; SELECT 4", ["SELECT \"we;ird\" FROM t", "SELECT 4"]),
        ("/* a; /* nested; */ still; */ SELECT 5; SELECT 6", ["/* a; /* nested; */ still; */ SELECT 5", "SELECT 6"]),
        (
            "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql; SELECT 7",
            ["CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql", "SELECT 7"]
        ),
        (
            "DO $body$ BEGIN PERFORM '$$;'; END $body$; SELECT 8",
            ["DO $body$ BEGIN PERFORM '$$;'; END $body$", "SELECT 8"]
        ),
        ("PREPARE p AS SELECT $1; EXECUTE p(1)", ["PREPARE p AS SELECT $1", "EXECUTE p(1)"]),
        ("-- header\nCREATE TABLE c (z int); -- trailing; comment\n", ["-- header\nCREATE TABLE c (z int)"]),
    ])
    func splitsStatements(script: String, expected: [String]) {
        #expect(SQLScript.statements(script) == expected)
    }

    @Test func bundledMigrationsSplitIntoStatements() throws {
        for migration in try Migration.bundled() {
            let statements = SQLScript.statements(migration.sql)
            #expect(!statements.isEmpty)
            #expect(statements.allSatisfy { !$0.hasSuffix(";") })
        }
    }
}
