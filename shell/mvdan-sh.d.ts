// Minimal declarations for the parts of mvdan-sh (GopherJS build of mvdan.cc/sh/v3/syntax) the shell uses.
// AST nodes are left `unknown`: shell/syntax.ts narrows them with `syntax.NodeType`.
declare module "mvdan-sh" {
  interface ShParser {
    /** Throws a `ShParseError`-shaped object on a syntax error. */
    Parse(src: string, name: string): unknown;
  }
  interface ShSyntax {
    NewParser(...options: unknown[]): ShParser;
    NodeType(node: unknown): string;
    Walk(node: unknown, visit: (node: unknown) => boolean): void;
    IsIncomplete(err: unknown): boolean;
  }
  const sh: { readonly syntax: ShSyntax };
  export default sh;
}
