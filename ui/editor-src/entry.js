// The editor surface Labrunner's pages use, bundled into ui/static/vendor/codemirror-<version>.js.
// Only this small API is exported so the pages never depend on CodeMirror internals.
import { autocompletion, closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { cpp } from "@codemirror/lang-cpp";
import { java } from "@codemirror/lang-java";
import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import {
  bracketMatching,
  defaultHighlightStyle,
  foldGutter,
  foldKeymap,
  indentOnInput,
  indentUnit,
  syntaxHighlighting,
} from "@codemirror/language";
import { highlightSelectionMatches, searchKeymap } from "@codemirror/search";
import { Compartment, EditorState, Transaction } from "@codemirror/state";
import {
  drawSelection,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
} from "@codemirror/view";

const LANGUAGES = {
  python: () => python(),
  c: () => cpp(),
  cpp: () => cpp(),
  java: () => java(),
  javascript: () => javascript(),
};

// Read-only means not editable at all (contenteditable=false), not just refusing edits: keys
// typed into an editor that is still loading would otherwise be dropped without a sign.
function lock(readOnly) {
  return [EditorState.readOnly.of(readOnly), EditorView.editable.of(!readOnly)];
}

function languageSupport(id) {
  return (LANGUAGES[id] || LANGUAGES.python)();
}

/**
 * Mount an editor in `parent`.
 * options: doc, language (a Labrunner language id), label (screen-reader name),
 * onChange(text) called after every edit, readOnly, keys ({"Mod-Enter": fn} shortcuts).
 * Returns { getCode, setCode, setLanguage, focus, view }.
 */
export function createEditor(parent, options = {}) {
  const language = new Compartment();
  const editable = new Compartment();
  const onChange = options.onChange || (() => {});
  // Text put in by the page (a loaded draft) is not an edit: no onChange, and not undoable.
  let loading = false;
  const shortcuts = Object.entries(options.keys || {}).map(([key, action]) => ({
    key,
    run: () => {
      action();
      return true;
    },
  }));
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: options.doc || "",
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightSpecialChars(),
        history(),
        foldGutter(),
        drawSelection(),
        indentOnInput(),
        // Four spaces: what Python teaching material uses, and never a tab/space mix.
        indentUnit.of("    "),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        bracketMatching(),
        closeBrackets(),
        // Completion pops up only on Ctrl-Space: beginners are not interrupted while typing.
        autocompletion({ activateOnTyping: false }),
        highlightActiveLine(),
        highlightSelectionMatches(),
        keymap.of([
          ...shortcuts,
          ...closeBracketsKeymap,
          ...defaultKeymap,
          ...searchKeymap,
          ...historyKeymap,
          ...foldKeymap,
          // Tab indents; Escape then Tab (or Ctrl-M) leaves the editor, so keyboard users are never trapped.
          indentWithTab,
        ]),
        language.of(languageSupport(options.language)),
        editable.of(lock(Boolean(options.readOnly))),
        EditorView.contentAttributes.of({
          "aria-label": options.label || "Code editor",
          "aria-multiline": "true",
          spellcheck: "false",
          autocapitalize: "off",
          autocorrect: "off",
        }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged && !loading) onChange(update.state.doc.toString());
        }),
      ],
    }),
  });
  return {
    view,
    getCode: () => view.state.doc.toString(),
    setCode(text) {
      loading = true;
      try {
        view.dispatch({
          changes: { from: 0, to: view.state.doc.length, insert: text },
          annotations: Transaction.addToHistory.of(false),
        });
      } finally {
        loading = false;
      }
    },
    setLanguage(id) {
      view.dispatch({ effects: language.reconfigure(languageSupport(id)) });
    },
    setReadOnly(flag) {
      view.dispatch({ effects: editable.reconfigure(lock(Boolean(flag))) });
    },
    focus: () => view.focus(),
  };
}
