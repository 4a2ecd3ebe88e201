// The widget's words in English and French. The language comes from data-p2pc-lang, the page's
// <html lang>, then the browser's; unknown languages fall back to English.

const EN = {
  comments: ["{n} comment", "{n} comments"],
  closed: "Comments are closed.",
  write: "Write a comment",
  send: "Post",
  reply: "Reply",
  edit: "Edit",
  save: "Save",
  cancel: "Cancel",
  delete: "Delete",
  confirmDelete: "Delete this comment? Its replies stay.",
  deleted: "[deleted]",
  hidden: "Hidden by a moderator.",
  withheld: "Withheld by the thread's rules.",
  waiting: "Waiting for moderation.",
  report: "Report",
  reportWhy: "Why report this comment?",
  show: "Show",
  hide: "Hide",
  unhide: "Unhide",
  close: "Close the thread",
  reopen: "Reopen the thread",
  addMod: "Add a moderator",
  modKey: "Moderator's key (key_…)",
  edited: "edited",
  history: "Edit history",
  parentEdited: "the comment it answers was edited since",
  react: "React",
  you: "you",
  name: "Your name",
  setName: "Set name",
  key: "Your key",
  keyHelp: "Comments are signed with a key kept in this browser. Export it to keep your identity; import one exported from here or from `p2pc key export`.",
  export: "Export the key",
  import: "Import a key",
  pasteKey: "Exported key",
  encrypted: "This key is protected by a passphrase, which this browser can't open: export it without one (p2pc key export from an unencrypted key).",
  badKey: "This is not an exported p2pcomments key.",
  offline: "No gateway answers; what you write is kept here and sent when one does.",
  queued: "{n} waiting to be sent",
  loading: "Loading comments…",
  noThread: "No comments yet.",
  failed: "Could not load the comments.",
  error: "Error: {message}",
  anonymous: "anonymous",
  imported: "imported from {source}, {date}",
  claimedBy: "claimed by {name}",
  pingback: "pingback",
  trackback: "trackback",
};
const FR = {
  comments: ["{n} commentaire", "{n} commentaires"],
  closed: "Les commentaires sont fermés.",
  write: "Écrire un commentaire",
  send: "Publier",
  reply: "Répondre",
  edit: "Modifier",
  save: "Enregistrer",
  cancel: "Annuler",
  delete: "Supprimer",
  confirmDelete: "Supprimer ce commentaire ? Ses réponses restent.",
  deleted: "[supprimé]",
  hidden: "Masqué par un modérateur.",
  withheld: "Retenu par les règles de la discussion.",
  waiting: "En attente de modération.",
  report: "Signaler",
  reportWhy: "Pourquoi signaler ce commentaire ?",
  show: "Afficher",
  hide: "Masquer",
  unhide: "Démasquer",
  close: "Fermer la discussion",
  reopen: "Rouvrir la discussion",
  addMod: "Ajouter un modérateur",
  modKey: "Clé du modérateur (key_…)",
  edited: "modifié",
  history: "Historique des modifications",
  parentEdited: "le commentaire auquel il répond a été modifié depuis",
  react: "Réagir",
  you: "vous",
  name: "Votre nom",
  setName: "Enregistrer le nom",
  key: "Votre clé",
  keyHelp: "Les commentaires sont signés avec une clé gardée dans ce navigateur. Exportez-la pour garder votre identité ; importez une clé exportée d’ici ou par `p2pc key export`.",
  export: "Exporter la clé",
  import: "Importer une clé",
  pasteKey: "Clé exportée",
  encrypted: "Cette clé est protégée par une phrase secrète que ce navigateur ne sait pas ouvrir : exportez-la sans phrase secrète.",
  badKey: "Ce n’est pas une clé p2pcomments exportée.",
  offline: "Aucune passerelle ne répond ; votre texte est gardé ici et sera envoyé dès que possible.",
  queued: "{n} en attente d’envoi",
  loading: "Chargement des commentaires…",
  noThread: "Pas encore de commentaire.",
  failed: "Impossible de charger les commentaires.",
  error: "Erreur : {message}",
  anonymous: "anonyme",
  imported: "importé de {source}, {date}",
  claimedBy: "revendiqué par {name}",
  pingback: "rétrolien (pingback)",
  trackback: "rétrolien (trackback)",
};
const TABLES = { en: EN, fr: FR };

export function pickLanguage(explicit, doc = document) {
  const candidates = [explicit, doc.documentElement.lang, ...(globalThis.navigator?.languages || [])];
  for (const tag of candidates) {
    const base = String(tag || "").toLowerCase().split("-")[0];
    if (TABLES[base]) return base;
  }
  return "en";
}

// translator("fr")("comments", {n: 3}) -> "3 commentaires" (plural forms by Intl.PluralRules).
export function translator(lang) {
  const table = TABLES[lang] || EN;
  const plural = new Intl.PluralRules(lang);
  return (key, values = {}) => {
    let text = table[key] ?? EN[key] ?? key;
    if (Array.isArray(text)) text = text[plural.select(values.n ?? 0) === "one" ? 0 : 1];
    return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
  };
}
