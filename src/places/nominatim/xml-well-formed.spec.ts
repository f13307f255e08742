import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { underWatchdog } from '../../../test/support/watchdog';
import { xmlProblem } from './xml-well-formed';

const fixture = (name: string) => readFileSync(join(__dirname, '..', '..', '..', 'test', 'fixtures', 'nominatim', name), 'utf8');

describe('xmlProblem', () => {
  it.each(['search-q-xml.xml', 'reverse-xml.xml', 'search-missing-q-xml.xml'])('accepts the recorded Nominatim answer %s', (name) => {
    expect(xmlProblem(fixture(name))).toBeNull();
  });

  it.each([
    ['a bare root', '<a/>'],
    ['a declaration, BOM and comments around the root', '\ufeff<?xml version="1.0"?>\n<!-- c --><a>x</a><!-- d -->\n'],
    ['nesting, text, references and CDATA', '<a x="1" y=\'&amp;&#38;&#x26;\'><b>&lt;1 &gt; 0 &quot;&apos;</b><c><![CDATA[<not a tag> & ]]></c><?pi data?></a>'],
    ['a DOCTYPE with an internal subset', '<!DOCTYPE a [<!ELEMENT a (#PCDATA)>]><a/>'],
    ['non-ASCII names and text', '<résultat lieu="Zürich">東京都</résultat>'],
    ['spaces inside tags', '<a  x = "1" ></a >'],
  ])('accepts %s', (_what, xml) => {
    expect(xmlProblem(xml)).toBeNull();
  });

  it.each([
    ['an empty document', '', 'no root element'],
    ['text only', 'OK', 'text outside the root element'],
    ['an HTML error page', '<html><body><h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>\n<br>', '</body> closes <hr>'],
    ['unclosed HTML', '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>Oops</body></html>', '</head> closes <meta>'],
    ['a truncated answer', fixture('search-q-xml.xml').slice(0, 300), 'unterminated attribute'],
    ['a truncated answer, between tags', '<?xml version="1.0"?><searchresults><place a="1"/>', '<searchresults> is not closed'],
    ['crossed tags', '<a><b></a></b>', '</a> closes <b>'],
    ['two roots', '<a/><b/>', 'content after the root element'],
    ['a bare ampersand', '<a>fish & chips</a>', "'&' that is not a reference"],
    ['an undefined entity', '<a>&nbsp;</a>', 'undefined entity &nbsp;'],
    ['an unquoted attribute', '<a x=1/>', 'attribute x not quoted'],
    ['a repeated attribute', '<a x="1" x="2"/>', 'attribute x repeated in <a>'],
    ['a < in an attribute', '<a x="<"/>', "'<' in attribute x"],
    ['attributes without space between them', '<a x="1"y="2"/>', 'bad start tag <a'],
    [']]> in text', '<a>]]></a>', "']]>' in text"],
    ['an unterminated comment', '<a><!-- x </a>', 'unterminated comment'],
    ['-- in a comment', '<a><!-- x -- y --></a>', "'--' inside a comment"],
    ['an unterminated CDATA section', '<a><![CDATA[x</a>', 'unterminated CDATA section'],
    ['JSON', '[{"place_id":1}]', 'text outside the root element'],
  ])('refuses %s', (_what, xml, problem) => {
    expect(xmlProblem(xml)).toContain(problem);
  });

  it('says where the problem is', () => {
    expect(xmlProblem('<a>fish & chips</a>')).toBe("'&' that is not a reference at character 8");
  });

  it('quotes at most 32 characters of a name, whole characters only', () => {
    const long = 'x'.repeat(100_000);
    expect(xmlProblem(`<${long}`)).toBe(`unterminated start tag <${'x'.repeat(32)}… at character 100001`);
    expect(xmlProblem(`<a></${long}>`)).toBe(`</${'x'.repeat(32)}…> closes <a> at character 3`);
    expect(xmlProblem(`<a>&${long};</a>`)).toBe(`undefined entity &${'x'.repeat(32)}…; at character 3`);
    // U+10000 is two UTF-16 units; a cut between them would leave half a character.
    expect(xmlProblem(`<${'x'.repeat(31)}\u{10000}${long}`)).toBe(`unterminated start tag <${'x'.repeat(31)}… at character 100034`);
    expect(xmlProblem('</a>')).toBe('end tag </a> before any start tag at character 0');
  });

  // Under the watchdog, like the test below: 400,000 places (13 MB) take about 150 ms to scan linearly;
  // work quadratic in the places (8e10 steps) or in the characters needs minutes. No time is measured.
  it('scans a long document (400,000 places) within the watchdog', () => {
    const doc = `<r>${'<place a="1" b="x y">text</place>'.repeat(400_000)}</r>`;
    expect(underWatchdog(() => xmlProblem(doc))).toBeNull();
    expect(underWatchdog(() => xmlProblem(`${doc}<`))).not.toBeNull();
  });

  // Under the watchdog (test/support/watchdog.ts), which stops synchronous code: a quadratic repeat
  // check (each name compared with every earlier one, 2e10 comparisons) needs minutes, a linear one a
  // fraction of a second. No time is measured here.
  it('scans one tag with 200,000 distinct attributes, and finds a repeat after them, within the watchdog', () => {
    const names = Array.from({ length: 200_000 }, (_, i) => `a${i.toString(36)}`);
    const doc = (extra: string) => `<searchresults ${names.map((a) => `${a}=""`).join(' ')}${extra}/>`;
    expect(underWatchdog(() => xmlProblem(doc('')))).toBeNull();
    expect(underWatchdog(() => xmlProblem(doc(' a0=""')))).toMatch(/^attribute a0 repeated in <searchresults> at character \d+$/);
  });
});
