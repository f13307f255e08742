/**
 * A linear well-formedness check of an XML document (XML 1.0 section 2.1's "well-formed" without a DTD):
 * one root element, every tag closed in order, attributes quoted and not repeated, `&` only as a
 * reference, comments, CDATA and processing instructions closed. It builds nothing and resolves no
 * entity, so it costs a scan of the text: enough to tell Nominatim's XML from a truncated answer or an
 * HTML error page, without a parser dependency. Returns null when well-formed, else what is wrong and
 * at which character: a short text that quotes no more of the document than a tag, attribute or entity
 * name cut to NAME_QUOTED characters (names hold no space, quote, markup or control character), as
 * clients and the log get it.
 */
export function xmlProblem(text: string): string | null {
  return new XmlScanner(text).document();
}

/** What xmlProblem finds wrong, or the name of the root element of the well-formed document. */
export function xmlRoot(text: string): { problem: string } | { root: string } {
  const scanner = new XmlScanner(text);
  const problem = scanner.document();
  return problem === null ? { root: scanner.root! } : { problem };
}

// Names as XML 1.0 (5th edition) allows them, in the BMP and above (the `u` flag).
const NAME_START = 'A-Za-z_:\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\u{10000}-\\u{EFFFF}';
const NAME_CHAR = `${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040`;
// XML names include combining marks and joiners by definition (ranges of single code points, not sequences).
// eslint-disable-next-line no-misleading-character-class
const NAME = new RegExp(`[${NAME_START}][${NAME_CHAR}]*`, 'uy');
// eslint-disable-next-line no-misleading-character-class
const REFERENCE = new RegExp(`&(?:[${NAME_START}][${NAME_CHAR}]*|#[0-9]+|#x[0-9A-Fa-f]+);`, 'uy');
const PREDEFINED = new Set(['&lt;', '&gt;', '&amp;', '&quot;', '&apos;']);
/** Characters of a name a problem quotes: past them the name is cut (`…`). */
const NAME_QUOTED = 32;

class XmlScanner {
  private i = 0;
  /**
   * The next ']]>' and '&' at or after the scan (-1: none left; -2: not looked for yet). The scan only
   * moves forward, so each is searched for once per occurrence, not once per text run (which would
   * make a long document without either quadratic).
   */
  private cdataEnd = -2;
  private amp = -2;
  /** The next '<' at or after an attribute value (as above: a tag's attributes would each rescan the tag). */
  private lt = -2;
  /** The root element's name, once its start tag is read. */
  root: string | undefined;

  constructor(private readonly s: string) {}

  document(): string | null {
    if (this.s.charCodeAt(0) === 0xfeff) this.i = 1;
    if (this.s.startsWith('<?xml', this.i) && /[\s?]/.test(this.s[this.i + 5] ?? '')) {
      const end = this.s.indexOf('?>', this.i);
      if (end < 0) return 'unterminated XML declaration';
      this.i = end + 2;
    }
    let p = this.misc(true);
    if (p !== null) return p;
    if (this.s[this.i] !== '<') return this.i >= this.s.length ? 'no root element' : this.at('text outside the root element');
    p = this.element();
    if (p !== null) return p;
    p = this.misc(false);
    if (p !== null) return p;
    return this.i < this.s.length ? this.at('content after the root element') : null;
  }

  /** Whitespace, comments and processing instructions around the root (and a DOCTYPE before it). */
  private misc(beforeRoot: boolean): string | null {
    for (;;) {
      this.skipSpace();
      if (this.s.startsWith('<!--', this.i)) {
        const p = this.comment();
        if (p !== null) return p;
      } else if (this.s.startsWith('<?', this.i)) {
        const p = this.pi();
        if (p !== null) return p;
      } else if (beforeRoot && this.s.startsWith('<!DOCTYPE', this.i)) {
        const p = this.doctype();
        if (p !== null) return p;
        beforeRoot = false;
      } else {
        return null;
      }
    }
  }

  /** The root element and everything in it, with an explicit stack (no recursion on deep nesting). */
  private element(): string | null {
    const open: string[] = [];
    do {
      const lt = this.s.indexOf('<', this.i);
      if (lt < 0) return open.length > 0 ? `<${shortName(open[open.length - 1])}> is not closed` : null;
      const p = this.text(lt);
      if (p !== null) return p;
      this.i = lt;
      if (this.s.startsWith('</', lt)) {
        this.i += 2;
        const name = this.name();
        if (name === null) return this.at('bad end tag');
        this.skipSpace();
        if (this.s[this.i] !== '>') return this.at(`bad end tag </${shortName(name)}`);
        this.i++;
        const expected = open.pop();
        if (expected === undefined) return this.atIndex(lt, `end tag </${shortName(name)}> before any start tag`);
        if (name !== expected) return this.atIndex(lt, `</${shortName(name)}> closes <${shortName(expected)}>`);
      } else if (this.s.startsWith('<!--', lt)) {
        if (open.length === 0) return this.at('comment outside the root element');
        const p2 = this.comment();
        if (p2 !== null) return p2;
      } else if (this.s.startsWith('<![CDATA[', lt)) {
        if (open.length === 0) return this.at('CDATA outside the root element');
        const end = this.s.indexOf(']]>', lt + 9);
        if (end < 0) return this.at('unterminated CDATA section');
        this.i = end + 3;
      } else if (this.s.startsWith('<?', lt)) {
        if (open.length === 0) return this.at('processing instruction outside the root element');
        const p2 = this.pi();
        if (p2 !== null) return p2;
      } else {
        if (open.length === 0 && lt !== this.i) return this.at('text outside the root element');
        this.i++;
        const name = this.name();
        if (name === null) return this.at('bad start tag');
        this.root ??= name;
        const p2 = this.attributes(name);
        if (p2 !== null) return p2;
        if (this.s.startsWith('/>', this.i)) {
          this.i += 2;
        } else if (this.s[this.i] === '>') {
          this.i++;
          open.push(name);
        } else {
          return this.at(`unterminated start tag <${shortName(name)}`);
        }
      }
    } while (open.length > 0);
    return null;
  }

  /** Character data from here to `end`: no `]]>`, and `&` only as a reference. */
  private text(end: number): string | null {
    if (this.cdataEnd !== -1 && this.cdataEnd < this.i) this.cdataEnd = this.s.indexOf(']]>', this.i);
    if (this.cdataEnd >= 0 && this.cdataEnd < end) return this.atIndex(this.cdataEnd, "']]>' in text");
    return this.references(this.i, end);
  }

  private references(from: number, end: number): string | null {
    for (let amp = this.nextAmp(from); amp >= 0 && amp < end; amp = this.nextAmp(amp + 1)) {
      REFERENCE.lastIndex = amp;
      const m = REFERENCE.exec(this.s);
      if (m === null || m.index + m[0].length > end) return this.atIndex(amp, "'&' that is not a reference");
      // Without a DTD only the five predefined entities and character references exist.
      if (m[0][1] !== '#' && !PREDEFINED.has(m[0])) return this.atIndex(amp, `undefined entity &${shortName(m[0].slice(1, -1))};`);
    }
    return null;
  }

  private nextAmp(from: number): number {
    if (this.amp !== -1 && this.amp < from) this.amp = this.s.indexOf('&', from);
    return this.amp;
  }

  private attributes(element: string): string | null {
    // A Set, not a list: 2 MB of answer can hold one tag with 200,000 attributes.
    const seen = new Set<string>();
    for (;;) {
      const before = this.i;
      this.skipSpace();
      const c = this.s[this.i];
      if (c === '>' || c === '/' || c === undefined) return null;
      if (this.i === before) return this.at(`bad start tag <${shortName(element)}`);
      const name = this.name();
      if (name === null) return this.at(`bad attribute in <${shortName(element)}>`);
      if (seen.has(name)) return this.at(`attribute ${shortName(name)} repeated in <${shortName(element)}>`);
      seen.add(name);
      this.skipSpace();
      if (this.s[this.i] !== '=') return this.at(`attribute ${shortName(name)} without a value`);
      this.i++;
      this.skipSpace();
      const quote = this.s[this.i];
      if (quote !== '"' && quote !== "'") return this.at(`attribute ${shortName(name)} not quoted`);
      const close = this.s.indexOf(quote, this.i + 1);
      if (close < 0) return this.at(`unterminated attribute ${shortName(name)}`);
      if (this.lt !== -1 && this.lt <= this.i) this.lt = this.s.indexOf('<', this.i + 1);
      if (this.lt >= 0 && this.lt < close) return this.atIndex(this.lt, `'<' in attribute ${shortName(name)}`);
      const p = this.references(this.i + 1, close);
      if (p !== null) return p;
      this.i = close + 1;
    }
  }

  private comment(): string | null {
    const end = this.s.indexOf('--', this.i + 4);
    if (end < 0) return this.at('unterminated comment');
    if (this.s[end + 2] !== '>') return this.atIndex(end, "'--' inside a comment");
    this.i = end + 3;
    return null;
  }

  private pi(): string | null {
    const end = this.s.indexOf('?>', this.i + 2);
    if (end < 0) return this.at('unterminated processing instruction');
    this.i = end + 2;
    return null;
  }

  /** <!DOCTYPE …> with or without an internal subset, skipped (quoted parts may hold '>' or ']'). */
  private doctype(): string | null {
    let depth = 0;
    for (let j = this.i + 9; j < this.s.length; j++) {
      const c = this.s[j];
      if (c === '"' || c === "'") {
        const close = this.s.indexOf(c, j + 1);
        if (close < 0) break;
        j = close;
      } else if (c === '[') depth++;
      else if (c === ']') depth--;
      else if (c === '>' && depth <= 0) {
        this.i = j + 1;
        return null;
      }
    }
    return this.at('unterminated DOCTYPE');
  }

  private name(): string | null {
    NAME.lastIndex = this.i;
    // test() rather than exec(): no match array per name (a large answer has hundreds of thousands).
    if (!NAME.test(this.s)) return null;
    const start = this.i;
    this.i = NAME.lastIndex;
    return this.s.slice(start, this.i);
  }

  private skipSpace(): void {
    for (let c = this.s.charCodeAt(this.i); c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a; c = this.s.charCodeAt(++this.i));
  }

  private at(what: string): string {
    return this.atIndex(this.i, what);
  }

  private atIndex(index: number, what: string): string {
    return `${what} at character ${index}`;
  }
}

export function shortName(name: string): string {
  if (name.length <= NAME_QUOTED) return name;
  const last = name.charCodeAt(NAME_QUOTED - 1);
  // Not between the two halves of a surrogate pair.
  const end = last >= 0xd800 && last <= 0xdbff ? NAME_QUOTED - 1 : NAME_QUOTED;
  return `${name.slice(0, end)}…`;
}
