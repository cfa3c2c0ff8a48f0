//! `swift-syntax-check`: what `bindings-swift/check.sh` runs on machines without a Swift compiler.
//!
//! ```text
//! swift-syntax-check swift FILE...     parse Swift files with the tree-sitter Swift grammar;
//!                                      print every ERROR and MISSING node as file:line:column
//!                                      and exit 1 if there is one
//! swift-syntax-check c-functions FILE  print the name of every function a C header declares,
//!                                      one a line (typedefs and function pointers excluded)
//! ```
//!
//! The grammar is not the Swift compiler: a file it accepts may still not type-check, and it
//! misreads two constructs that `uniffi-bindgen` emits and the compiler accepts, so those are
//! blanked (replaced by spaces, so every position stays where it was) before parsing; see
//! [`KNOWN_MISREADINGS`].

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use tree_sitter::{Language, Node, Parser, Tree};

/// Valid Swift that the tree-sitter Swift grammar (0.7) reads as an error, with what to blank
/// of it: (the text as it occurs, the part of it to replace with spaces).
///
/// - `@_documentation(visibility: private)`: an underscored attribute whose argument label is a
///   keyword; the whole attribute is blanked (the declaration it decorates stays).
/// - `{ () }`: a closure whose body is the empty tuple; the `()` is blanked, leaving `{    }`,
///   an empty closure of the same shape.
const KNOWN_MISREADINGS: [(&str, &str); 2] =
    [("@_documentation(visibility: private)", "@_documentation(visibility: private)"), ("{ () }", "()")];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((cmd, files)) if cmd == "swift" && !files.is_empty() => check_swift_files(files),
        Some((cmd, [header])) if cmd == "c-functions" => list_c_functions(header),
        _ => {
            eprintln!(
                "usage: swift-syntax-check swift FILE...\n       swift-syntax-check c-functions HEADER"
            );
            ExitCode::from(2)
        }
    }
}

fn check_swift_files(files: &[String]) -> ExitCode {
    let mut parser = parser_for(tree_sitter_swift::LANGUAGE.into());
    let mut failed = 0usize;
    let mut lines = 0usize;
    for file in files {
        let source = match std::fs::read_to_string(file) {
            Ok(source) => source,
            Err(e) => {
                eprintln!("{file}: cannot read: {e}");
                failed += 1;
                continue;
            }
        };
        lines += source.lines().count();
        let blanked = blank_known_misreadings(&source);
        let Some(tree) = parser.parse(&blanked, None) else {
            eprintln!("{file}: the parser gave up");
            failed += 1;
            continue;
        };
        let problems = problems(&tree, &source);
        if problems.is_empty() {
            println!("    ok  {file}");
        } else {
            failed += 1;
            println!("  FAIL  {file}");
            for problem in &problems {
                println!("{}", problem.render(file, &source));
            }
        }
    }
    println!("    {} Swift files ({lines} lines) parsed, {failed} with syntax errors", files.len());
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn parser_for(language: Language) -> Parser {
    let mut parser = Parser::new();
    parser.set_language(&language).expect("the grammar matches the tree-sitter library");
    parser
}

/// `source` with every [`KNOWN_MISREADINGS`] blanked: same length, same line breaks.
fn blank_known_misreadings(source: &str) -> String {
    let mut text = source.to_owned();
    for (occurrence, part) in KNOWN_MISREADINGS {
        let within = occurrence.find(part).expect("the blanked part is inside the occurrence");
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
    let text = &source[node.byte_range()];
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
    let mut parser = parser_for(tree_sitter_c::LANGUAGE.into());
    let Some(tree) = parser.parse(blank_nullability(&source), None) else {
        eprintln!("{header}: the parser gave up");
        return ExitCode::FAILURE;
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
    let mut text = source.as_bytes().to_vec();
    for word in NULLABILITY {
        let mut from = 0;
        while let Some(found) = source[from..].find(word) {
            let start = from + found;
            let end = start + word.len();
            let before = start.checked_sub(1).map(|i| source.as_bytes()[i]);
            let after = source.as_bytes().get(end).copied();
            if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) {
                text[start..end].fill(b' ');
            }
            from = end;
        }
    }
    String::from_utf8(text).expect("only ASCII was replaced, by ASCII")
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
            (inner.kind() == "identifier").then(|| source[inner.byte_range()].to_owned())
        }
        "pointer_declarator" => function_name(declarator.child_by_field_name("declarator")?, source),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swift_problems(source: &str) -> Vec<(usize, usize)> {
        let mut parser = parser_for(tree_sitter_swift::LANGUAGE.into());
        let blanked = blank_known_misreadings(source);
        let tree = parser.parse(&blanked, None).unwrap();
        problems(&tree, source).iter().map(|p| (p.row + 1, p.column + 1)).collect()
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
        let blanked = blank_known_misreadings(source);
        assert_eq!(blanked.len(), source.len());
        assert_eq!(blanked.lines().count(), source.lines().count());
        assert!(blanked.contains("{    }"));
        assert!(!blanked.contains("@_documentation"));
        assert_eq!(swift_problems(source), vec![]);
    }

    #[test]
    fn the_known_misreadings_are_real() {
        // If the grammar learns these, KNOWN_MISREADINGS can go.
        let mut parser = parser_for(tree_sitter_swift::LANGUAGE.into());
        for source in [
            "#if swift(>=5.8)\n@_documentation(visibility: private)\n#endif\npublic struct S {}\n",
            "func f() {\n    let w = { () }\n    w()\n}\n",
        ] {
            assert!(parser.parse(source, None).unwrap().root_node().has_error(), "{source}");
        }
    }

    #[test]
    fn c_functions_exclude_typedefs_and_function_pointers() {
        let source = "typedef void (*Callback)(int);\ntypedef struct S { int a; } S;\nvoid (*pointer)(int);\nint plain(int a);\nchar *returns_pointer(void);\nstatic int defined(void) { return 0; }\n#ifndef G\n#define G\nuint64_t guarded(uint64_t handle, RustCallStatus *_Nonnull status\n);\n#endif\n";
        let mut parser = parser_for(tree_sitter_c::LANGUAGE.into());
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
