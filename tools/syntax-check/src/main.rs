//! `syntax-check`: what the binding checks run on machines without a Swift or C# compiler.
//!
//! ```text
//! syntax-check swift FILE...     parse Swift files with the tree-sitter Swift grammar;
//!                                print every ERROR and MISSING node as file:line:column
//!                                and exit 1 if there is one
//! syntax-check csharp FILE...    the same for C# files, with the tree-sitter C# grammar
//! syntax-check c-functions FILE  print the name of every function a C header declares,
//!                                one a line (typedefs and function pointers excluded)
//! ```
//!
//! A grammar is not the compiler: a file it accepts may still not type-check. The Swift grammar
//! misreads two constructs that `uniffi-bindgen` emits and the compiler accepts, so those are
//! blanked (replaced by spaces, so every position stays where it was) before parsing; see
//! [`KNOWN_MISREADINGS`]. Nothing is blanked in C#.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use tree_sitter::{Language, LanguageError, Node, Parser, Tree};

/// Valid Swift that the tree-sitter Swift grammar (0.7) reads as an error, with what to blank
/// of it: (the text as it occurs, the part of it to replace with spaces).
///
/// - `@_documentation(visibility: private)`: an underscored attribute whose argument label is a
///   keyword; the whole attribute is blanked (the declaration it decorates stays).
/// - `{ () }`: a closure whose body is the empty tuple; the `()` is blanked, leaving `{    }`,
///   an empty closure of the same shape.
const KNOWN_MISREADINGS: [(&str, &str); 2] =
    [("@_documentation(visibility: private)", "@_documentation(visibility: private)"), ("{ () }", "()")];

/// A language the checker parses: the one routine, [`check_files`], takes it.
struct Lang {
    /// As the summary line names it.
    name: &'static str,
    /// The tree-sitter grammar of the language.
    grammar: fn() -> Language,
    /// Valid text the grammar misreads, blanked before parsing (see [`KNOWN_MISREADINGS`]).
    misreadings: &'static [(&'static str, &'static str)],
}

const SWIFT: Lang =
    Lang { name: "Swift", grammar: || tree_sitter_swift::LANGUAGE.into(), misreadings: &KNOWN_MISREADINGS };

/// The C# grammar (0.23) reads C# 7.2 as the compiler does, and `#region`, `#pragma` and
/// `#nullable` anywhere: nothing is blanked. It reads `#if`/`#elif`/`#else`/`#endif` around whole
/// usings, members (with their attributes), attribute lists, statements and one whole expression,
/// but reports these valid uses as errors, so the glue is written without them:
///
/// - `#if` around switch sections (`case …:` and its statements);
/// - around a property's or event's accessor (`set { … }`);
/// - around an enum member with its comma (`Two,`; `Two` alone reads);
/// - around part of a declaration or expression: a base list, a parameter, a method's signature
///   with its body after `#endif`, an operand (`?? 1`), an array element with its comma.
///   Tree-sitter reads every branch as one text, so only a compiler can check these.
const CSHARP: Lang = Lang { name: "C#", grammar: || tree_sitter_c_sharp::LANGUAGE.into(), misreadings: &[] };

const USAGE: &str = "usage: syntax-check swift FILE...\n       syntax-check csharp FILE...\n       syntax-check c-functions HEADER";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((cmd, files)) if cmd == "swift" && !files.is_empty() => check_files(&SWIFT, files),
        Some((cmd, files)) if cmd == "csharp" && !files.is_empty() => check_files(&CSHARP, files),
        Some((cmd, [header])) if cmd == "c-functions" => list_c_functions(header),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Why a file could not be checked at all (as opposed to having syntax errors).
#[derive(Debug)]
enum CheckError {
    Unreadable(std::io::Error),
    /// The grammar was built for a tree-sitter ABI this library does not read.
    Grammar(LanguageError),
    /// Tree-sitter returned no tree (it does so only when cancelled, timed out or without a
    /// language).
    ParserGaveUp,
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Unreadable(e) => write!(f, "cannot read: {e}"),
            CheckError::Grammar(e) => write!(f, "the grammar does not fit the tree-sitter library: {e}"),
            CheckError::ParserGaveUp => f.write_str("the parser gave up"),
        }
    }
}

/// Parses every file with `lang`'s grammar and prints `ok` or `FAIL` for each, the problems of
/// those that fail, and a summary line; fails when one file does.
fn check_files(lang: &Lang, files: &[String]) -> ExitCode {
    let mut failed = 0usize;
    let mut lines = 0usize;
    let mut parser = match parser_for((lang.grammar)()) {
        Ok(parser) => parser,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // A closed pipe (`| head`) does not stop the check: the exit code still tells.
    let mut out = std::io::stdout().lock();
    for file in files {
        match check_file(&mut parser, lang, file) {
            Ok((source, problems)) => {
                lines += source.lines().count();
                if problems.is_empty() {
                    let _ = writeln!(out, "    ok  {file}");
                    continue;
                }
                let _ = writeln!(out, "  FAIL  {file}");
                for problem in &problems {
                    let _ = writeln!(out, "{}", problem.render(file, &source));
                }
            }
            Err(e) => eprintln!("{file}: {e}"),
        }
        failed += 1;
    }
    let _ = writeln!(
        out,
        "    {} {} files ({lines} lines) parsed, {failed} with syntax errors",
        files.len(),
        lang.name
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The source of `file` and its problems.
fn check_file(parser: &mut Parser, lang: &Lang, file: &str) -> Result<(String, Vec<Problem>), CheckError> {
    let source = std::fs::read_to_string(file).map_err(CheckError::Unreadable)?;
    let blanked = blank(&source, lang.misreadings);
    let tree = parser.parse(&blanked, None).ok_or(CheckError::ParserGaveUp)?;
    let problems = problems(&tree, &source);
    Ok((source, problems))
}

fn parser_for(language: Language) -> Result<Parser, CheckError> {
    let mut parser = Parser::new();
    parser.set_language(&language).map_err(CheckError::Grammar)?;
    Ok(parser)
}

/// `source` with every misreading blanked: same length, same line breaks. A misreading whose
/// part is not inside its occurrence blanks nothing.
fn blank(source: &str, misreadings: &[(&str, &str)]) -> String {
    let mut text = source.to_owned();
    for &(occurrence, part) in misreadings {
        let Some(within) = occurrence.find(part) else { continue };
        let mut from = 0;
        while let Some(found) = text[from..].find(occurrence) {
            let start = from + found + within;
            text.replace_range(start..start + part.len(), &" ".repeat(part.len()));
            from = from + found + occurrence.len();
        }
    }
    debug_assert_eq!(text.len(), source.len());
    text
}

/// One ERROR or MISSING node.
struct Problem {
    /// 0-based row and byte column.
    row: usize,
    column: usize,
    what: String,
}

impl Problem {
    /// `file:line:column: what`, then the line and a caret under the column (1-based, in
    /// characters).
    fn render(&self, file: &str, source: &str) -> String {
        let line = source.lines().nth(self.row).unwrap_or("");
        let column = line.get(..self.column).map_or(self.column, |before| before.chars().count());
        let mut out = format!("{file}:{}:{}: {}\n", self.row + 1, column + 1, self.what);
        let _ = write!(out, "    | {line}\n    | {}^", " ".repeat(column));
        out
    }
}

/// The outermost ERROR nodes and every MISSING node of `tree`, in source order.
fn problems(tree: &Tree, source: &str) -> Vec<Problem> {
    let mut found = Vec::new();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        if !node.has_error() {
            continue;
        }
        let at = node.start_position();
        if node.is_missing() {
            found.push(Problem {
                row: at.row,
                column: at.column,
                what: format!("missing `{}`", node.kind()),
            });
        } else if node.is_error() {
            found.push(Problem { row: at.row, column: at.column, what: describe_error(node, source) });
            // Report what is missing inside it too, but not every nested error.
            collect_missing(node, &mut found);
            continue;
        }
        let mut cursor = node.walk();
        let children: Vec<Node> = node.children(&mut cursor).collect();
        stack.extend(children.into_iter().rev());
    }
    found.sort_by_key(|p| (p.row, p.column));
    found
}

fn collect_missing(node: Node, found: &mut Vec<Problem>) {
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        if child.is_missing() {
            let at = child.start_position();
            found.push(Problem {
                row: at.row,
                column: at.column,
                what: format!("missing `{}`", child.kind()),
            });
        } else if child.has_error() {
            collect_missing(child, found);
        }
    }
}

fn describe_error(node: Node, source: &str) -> String {
    let text = source.get(node.byte_range()).unwrap_or("");
    let first_line = text.lines().next().unwrap_or("").trim();
    let shown: String = first_line.chars().take(60).collect();
    let more = if shown.len() < first_line.len() || text.lines().count() > 1 { " …" } else { "" };
    format!("syntax error: cannot parse `{shown}{more}`")
}

fn list_c_functions(header: &str) -> ExitCode {
    let source = match std::fs::read_to_string(header) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("{header}: cannot read: {e}");
            return ExitCode::FAILURE;
        }
    };
    let parsed = parser_for(tree_sitter_c::LANGUAGE.into()).and_then(|mut parser| {
        parser.parse(blank_nullability(&source), None).ok_or(CheckError::ParserGaveUp)
    });
    let tree = match parsed {
        Ok(tree) => tree,
        Err(e) => {
            eprintln!("{header}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let problems = problems(&tree, &source);
    if !problems.is_empty() {
        // The C compiler is the judge of the header; this only means the names may be incomplete.
        let name = Path::new(header).display().to_string();
        for problem in &problems {
            eprintln!("{}", problem.render(&name, &source));
        }
        eprintln!("{header}: the C grammar could not read all of it; the function list may be incomplete");
        return ExitCode::FAILURE;
    }
    let mut names = Vec::new();
    declared_functions(tree.root_node(), &source, &mut names);
    let mut out = std::io::stdout().lock();
    for name in names {
        // A closed pipe (`| head`) is not an error of the header.
        if writeln!(out, "{name}").is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

/// Clang's nullability qualifiers, which the C grammar does not know (nor does GCC); they only
/// annotate pointers, so they are blanked before parsing.
const NULLABILITY: [&str; 3] = ["_Nullable", "_Nonnull", "_Null_unspecified"];

/// `source` with every [`NULLABILITY`] qualifier blanked, as a whole word: same length.
fn blank_nullability(source: &str) -> String {
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut text = source.to_owned();
    for word in NULLABILITY {
        let mut from = 0;
        while let Some(found) = source[from..].find(word) {
            let start = from + found;
            let end = start + word.len();
            let before = start.checked_sub(1).map(|i| source.as_bytes()[i]);
            let after = source.as_bytes().get(end).copied();
            if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) {
                text.replace_range(start..end, &" ".repeat(word.len()));
            }
            from = end;
        }
    }
    text
}

/// Names of the functions declared (not typedef'd, not pointers to functions) under `node`.
fn declared_functions(node: Node, source: &str, names: &mut Vec<String>) {
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        match child.kind() {
            "declaration" => {
                let mut declarators = child.walk();
                for declarator in child.children_by_field_name("declarator", &mut declarators) {
                    if let Some(name) = function_name(declarator, source) {
                        names.push(name);
                    }
                }
            }
            // Typedefs, struct bodies and function bodies declare no functions of the library.
            "type_definition" | "struct_specifier" | "function_definition" => {}
            _ => declared_functions(child, source, names),
        }
    }
}

/// The name a declarator declares, if it declares a function: `f(…)` or `*f(…)` (a function
/// returning a pointer), but not `(*f)(…)` (a pointer to a function).
fn function_name(declarator: Node, source: &str) -> Option<String> {
    match declarator.kind() {
        "function_declarator" => {
            let inner = declarator.child_by_field_name("declarator")?;
            if inner.kind() == "identifier" {
                source.get(inner.byte_range()).map(str::to_owned)
            } else {
                None
            }
        }
        "pointer_declarator" => function_name(declarator.child_by_field_name("declarator")?, source),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (line, column) of every problem, both 1-based.
    fn problems_in(lang: &Lang, source: &str) -> Vec<(usize, usize)> {
        let mut parser = parser_for((lang.grammar)()).unwrap();
        let blanked = blank(source, lang.misreadings);
        let tree = parser.parse(&blanked, None).unwrap();
        problems(&tree, source).iter().map(|p| (p.row + 1, p.column + 1)).collect()
    }

    fn swift_problems(source: &str) -> Vec<(usize, usize)> {
        problems_in(&SWIFT, source)
    }

    #[test]
    fn valid_swift_has_no_problems() {
        let source = "import Foundation\n\npublic final class A {\n    public func f(x: Int) async throws -> [String: Int] {\n        return [\"a\": x]\n    }\n}\n";
        assert_eq!(swift_problems(source), vec![]);
    }

    #[test]
    fn errors_are_found_with_their_position() {
        let source = "let a = 1\nfunc f( {\n}\n";
        let found = swift_problems(source);
        assert!(!found.is_empty());
        assert_eq!(found[0].0, 2, "{found:?}");
    }

    #[test]
    fn missing_tokens_are_found() {
        let found = swift_problems("let x = [1, 2\n");
        assert!(!found.is_empty(), "{found:?}");
    }

    #[test]
    fn known_misreadings_are_blanked_in_place() {
        let source = "#if swift(>=5.8)\n@_documentation(visibility: private)\n#endif\npublic func f() { let w = { () }; w() }\n";
        let blanked = blank(source, &KNOWN_MISREADINGS);
        assert_eq!(blanked.len(), source.len());
        assert_eq!(blanked.lines().count(), source.lines().count());
        assert!(blanked.contains("{    }"));
        assert!(!blanked.contains("@_documentation"));
        assert_eq!(swift_problems(source), vec![]);
    }

    #[test]
    fn the_known_misreadings_are_real() {
        // If the grammar learns these, KNOWN_MISREADINGS can go.
        let mut parser = parser_for(tree_sitter_swift::LANGUAGE.into()).unwrap();
        for source in [
            "#if swift(>=5.8)\n@_documentation(visibility: private)\n#endif\npublic struct S {}\n",
            "func f() {\n    let w = { () }\n    w()\n}\n",
        ] {
            assert!(parser.parse(source, None).unwrap().root_node().has_error(), "{source}");
        }
    }

    fn csharp_problems(source: &str) -> Vec<(usize, usize)> {
        problems_in(&CSHARP, source)
    }

    #[test]
    fn csharp_directives_around_usings_members_and_statements_pass() {
        let source = "#nullable enable\n#if WINDOWS_UWP && !DEBUG\nusing Windows.Foundation;\n#elif (NETFX_CORE || NET462)\nusing System.Threading;\n#else\n#endif\nusing System;\n\nnamespace N\n{\n    #region Glue\n    enum E { One,\n#if WINDOWS_UWP\n        Two\n#endif\n    }\n\n    class C\n    {\n#if WINDOWS_UWP\n        [Obsolete]\n        void M() { }\n#elif NETFX_CORE\n        void M() { }\n#else\n#if DEBUG\n        int P { get; }\n#endif\n#endif\n        int F(bool b)\n        {\n#pragma warning disable CS0162\n#if WINDOWS_UWP\n            if (b) { return 1; }\n#endif\n            return\n#if DEBUG\n                2\n#else\n                3\n#endif\n                ;\n        }\n    }\n    #endregion\n}\n";
        assert_eq!(csharp_problems(source), vec![]);
    }

    #[test]
    fn csharp_errors_are_found_with_their_position() {
        let found = csharp_problems("class C\n{\n    void M() { int x = (1 + 2; }\n}\n");
        assert_eq!(found.first(), Some(&(3, 30)), "{found:?}");
    }

    #[test]
    fn the_csharp_misreadings_are_real() {
        // Valid C#; if the grammar learns to read one, the list on CSHARP can lose it.
        for member in [
            "int M(int x)\n{\n    switch (x)\n    {\n#if A\n        case 1:\n            return 1;\n#endif\n        default:\n            return 0;\n    }\n}",
            "int P\n{\n    get { return 1; }\n#if A\n    set { }\n#endif\n}",
            "enum E\n{\n    One,\n#if A\n    Two,\n#endif\n    Three,\n}",
            "#if A\nvoid M(int a)\n#else\nvoid M(long a)\n#endif\n{\n}",
            "int[] a = {\n    1,\n#if A\n    2,\n#endif\n};",
        ] {
            let source = format!("class C\n{{\n{member}\n}}\n");
            assert!(!csharp_problems(&source).is_empty(), "{source}");
        }
    }

    #[test]
    fn c_functions_exclude_typedefs_and_function_pointers() {
        let source = "typedef void (*Callback)(int);\ntypedef struct S { int a; } S;\nvoid (*pointer)(int);\nint plain(int a);\nchar *returns_pointer(void);\nstatic int defined(void) { return 0; }\n#ifndef G\n#define G\nuint64_t guarded(uint64_t handle, RustCallStatus *_Nonnull status\n);\n#endif\n";
        let mut parser = parser_for(tree_sitter_c::LANGUAGE.into()).unwrap();
        let blanked = blank_nullability(source);
        assert!(!blanked.contains("_Nonnull"));
        assert_eq!(blanked.len(), source.len());
        let tree = parser.parse(&blanked, None).unwrap();
        assert!(!tree.root_node().has_error());
        let mut names = Vec::new();
        declared_functions(tree.root_node(), source, &mut names);
        assert_eq!(names, ["plain", "returns_pointer", "guarded"]);
    }
}
