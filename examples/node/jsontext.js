// jsontext.js: split the text of a JSON array or object into the raw texts
// of its elements or members, without parsing and re-serialising them.
//
// Why: chatpersist's checksum is a hash of the exact text PostgreSQL prints
// for a jsonb value (docs/checksum.md). JSON.parse followed by
// JSON.stringify does not give that text back (1.50 becomes 1.5, key order
// and spacing change), so a client that wants to rebuild an array's text
// from its messages keeps each message's text as the server sent it. When
// the server sends several messages inside one jsonb value (messages_since's
// changes), this scanner cuts them out.
//
// The scanner is string-aware (brackets, braces, commas and colons inside
// strings, and escaped quotes, do not count) and accepts any JSON white
// space between tokens. It checks the structure it walks (balanced
// brackets, terminated strings, commas and colons where they belong) but
// not the scalars themselves: pass it text that came from a JSON producer.

const WS = new Set([' ', '\t', '\n', '\r']);

/** Index of the first non-white-space character at or after i. */
function skipWs(text, i) {
  while (i < text.length && WS.has(text[i])) i++;
  return i;
}

/**
 * The end (exclusive) of the JSON value that starts at text[i]: a string,
 * an array or object (matched brackets, strings skipped), or a bare scalar
 * (up to the next delimiter).
 */
function valueEnd(text, i) {
  const c = text[i];
  if (c === undefined) throw new SyntaxError(`JSON value expected at offset ${i}`);
  if (c === '"') return stringEnd(text, i);
  if (c === '[' || c === '{') {
    const stack = [];
    for (let j = i; j < text.length; j++) {
      const d = text[j];
      if (d === '"') {
        j = stringEnd(text, j) - 1;
      } else if (d === '[' || d === '{') {
        stack.push(d === '[' ? ']' : '}');
      } else if (d === ']' || d === '}') {
        if (stack.pop() !== d) throw new SyntaxError(`unexpected "${d}" at offset ${j}`);
        if (stack.length === 0) return j + 1;
      }
    }
    throw new SyntaxError(`unterminated ${c === '[' ? 'array' : 'object'} starting at offset ${i}`);
  }
  if (c === ']' || c === '}' || c === ',' || c === ':') throw new SyntaxError(`JSON value expected at offset ${i}`);
  let j = i;
  while (j < text.length && !WS.has(text[j]) && !',:]}[{"'.includes(text[j])) j++;
  return j;
}

/** The end (exclusive) of the string whose opening quote is text[i]. */
function stringEnd(text, i) {
  for (let j = i + 1; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === '"') return j + 1;
  }
  throw new SyntaxError(`unterminated string starting at offset ${i}`);
}

/**
 * Walk the container in text (which must be one array or object, with
 * optional white space around it), calling onItem(start, end) for each
 * element's or member value's text and, for objects, onKey(start, end)
 * for each key's text (quotes included).
 */
function walk(text, open, onItem, onKey) {
  const close = open === '[' ? ']' : '}';
  let i = skipWs(text, 0);
  if (text[i] !== open) throw new SyntaxError(`expected "${open}" at offset ${i}`);
  i = skipWs(text, i + 1);
  if (text[i] === close) {
    i++;
  } else {
    for (;;) {
      if (open === '{') {
        if (text[i] !== '"') throw new SyntaxError(`object key expected at offset ${i}`);
        const keyEnd = stringEnd(text, i);
        onKey(i, keyEnd);
        i = skipWs(text, keyEnd);
        if (text[i] !== ':') throw new SyntaxError(`":" expected at offset ${i}`);
        i = skipWs(text, i + 1);
      }
      const end = valueEnd(text, i);
      onItem(i, end);
      i = skipWs(text, end);
      if (text[i] === ',') {
        i = skipWs(text, i + 1);
      } else if (text[i] === close) {
        i++;
        break;
      } else {
        throw new SyntaxError(`"," or "${close}" expected at offset ${i}`);
      }
    }
  }
  if (skipWs(text, i) !== text.length) throw new SyntaxError(`unexpected text after the ${open === '[' ? 'array' : 'object'} at offset ${i}`);
}

/**
 * The raw texts of the elements of a JSON array text, in order.
 * splitArray('[1.50, {"a": [1, "]"]}]') → ['1.50', '{"a": [1, "]"]}']
 */
export function splitArray(text) {
  const out = [];
  walk(text, '[', (s, e) => out.push(text.slice(s, e)));
  return out;
}

/**
 * The members of a JSON object text, in order, as [key, rawValueText]
 * pairs; the key is decoded (it is a plain string), the value is not.
 * splitObject('{"id": "m1", "n": 1.50}') → [['id', '"m1"'], ['n', '1.50']]
 */
export function splitObject(text) {
  const out = [];
  let key;
  walk(text, '{', (s, e) => out.push([key, text.slice(s, e)]), (s, e) => { key = JSON.parse(text.slice(s, e)); });
  return out;
}

/**
 * The text PostgreSQL prints for a jsonb array whose elements print as the
 * given texts: "[" + the texts joined by ", " + "]", and "[]" when empty.
 */
export function arrayText(elementTexts) {
  return elementTexts.length === 0 ? '[]' : `[${elementTexts.join(', ')}]`;
}
