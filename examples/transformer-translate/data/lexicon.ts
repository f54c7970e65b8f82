/** The bilingual lexicon of the built-in English→German caption corpus. */
export type Gender = 'm' | 'f' | 'n';

export interface Noun {
  en: string;
  enPl: string;
  de: string;
  dePl: string;
  g: Gender;
  /** What the noun can do in a sentence. */
  kind: 'agent' | 'thing' | 'place';
}

const N = (en: string, enPl: string, de: string, dePl: string, g: Gender, kind: Noun['kind']): Noun => ({ en, enPl, de, dePl, g, kind });

export const NOUNS: Noun[] = [
  N('man', 'men', 'Mann', 'Männer', 'm', 'agent'),
  N('woman', 'women', 'Frau', 'Frauen', 'f', 'agent'),
  N('child', 'children', 'Kind', 'Kinder', 'n', 'agent'),
  N('boy', 'boys', 'Junge', 'Jungen', 'm', 'agent'),
  N('girl', 'girls', 'Mädchen', 'Mädchen', 'n', 'agent'),
  N('dog', 'dogs', 'Hund', 'Hunde', 'm', 'agent'),
  N('cat', 'cats', 'Katze', 'Katzen', 'f', 'agent'),
  N('horse', 'horses', 'Pferd', 'Pferde', 'n', 'agent'),
  N('bird', 'birds', 'Vogel', 'Vögel', 'm', 'agent'),
  N('worker', 'workers', 'Arbeiter', 'Arbeiter', 'm', 'agent'),
  N('teacher', 'teachers', 'Lehrerin', 'Lehrerinnen', 'f', 'agent'),
  N('player', 'players', 'Spieler', 'Spieler', 'm', 'agent'),
  N('baby', 'babies', 'Baby', 'Babys', 'n', 'agent'),
  N('musician', 'musicians', 'Musiker', 'Musiker', 'm', 'agent'),
  N('student', 'students', 'Studentin', 'Studentinnen', 'f', 'agent'),
  N('cook', 'cooks', 'Koch', 'Köche', 'm', 'agent'),
  N('ball', 'balls', 'Ball', 'Bälle', 'm', 'thing'),
  N('hat', 'hats', 'Hut', 'Hüte', 'm', 'thing'),
  N('book', 'books', 'Buch', 'Bücher', 'n', 'thing'),
  N('bag', 'bags', 'Tasche', 'Taschen', 'f', 'thing'),
  N('bicycle', 'bicycles', 'Fahrrad', 'Fahrräder', 'n', 'thing'),
  N('car', 'cars', 'Auto', 'Autos', 'n', 'thing'),
  N('guitar', 'guitars', 'Gitarre', 'Gitarren', 'f', 'thing'),
  N('apple', 'apples', 'Apfel', 'Äpfel', 'm', 'thing'),
  N('flower', 'flowers', 'Blume', 'Blumen', 'f', 'thing'),
  N('box', 'boxes', 'Kiste', 'Kisten', 'f', 'thing'),
  N('kite', 'kites', 'Drachen', 'Drachen', 'm', 'thing'),
  N('stick', 'sticks', 'Stock', 'Stöcke', 'm', 'thing'),
  N('cup', 'cups', 'Tasse', 'Tassen', 'f', 'thing'),
  N('shirt', 'shirts', 'Hemd', 'Hemden', 'n', 'thing'),
  N('jacket', 'jackets', 'Jacke', 'Jacken', 'f', 'thing'),
  N('umbrella', 'umbrellas', 'Schirm', 'Schirme', 'm', 'thing'),
  N('street', 'streets', 'Straße', 'Straßen', 'f', 'place'),
  N('grass', 'grasses', 'Gras', 'Gräser', 'n', 'place'),
  N('beach', 'beaches', 'Strand', 'Strände', 'm', 'place'),
  N('park', 'parks', 'Park', 'Parks', 'm', 'place'),
  N('bench', 'benches', 'Bank', 'Bänke', 'f', 'place'),
  N('table', 'tables', 'Tisch', 'Tische', 'm', 'place'),
  N('bridge', 'bridges', 'Brücke', 'Brücken', 'f', 'place'),
  N('field', 'fields', 'Feld', 'Felder', 'n', 'place'),
  N('house', 'houses', 'Haus', 'Häuser', 'n', 'place'),
  N('tree', 'trees', 'Baum', 'Bäume', 'm', 'place'),
  N('wall', 'walls', 'Mauer', 'Mauern', 'f', 'place'),
  N('stage', 'stages', 'Bühne', 'Bühnen', 'f', 'place'),
  N('road', 'roads', 'Weg', 'Wege', 'm', 'place'),
  N('river', 'rivers', 'Fluss', 'Flüsse', 'm', 'place'),
  N('snow', 'snows', 'Schnee', 'Schnee', 'm', 'place'),
  N('water', 'waters', 'Wasser', 'Wasser', 'n', 'place'),
  N('building', 'buildings', 'Gebäude', 'Gebäude', 'n', 'place'),
  N('window', 'windows', 'Fenster', 'Fenster', 'n', 'place'),
  N('car park', 'car parks', 'Parkplatz', 'Parkplätze', 'm', 'place'),
  N('kitchen', 'kitchens', 'Küche', 'Küchen', 'f', 'place'),
];

/** English adjective → German stem (endings are added by case, gender, number, article). */
export const ADJECTIVES: [string, string][] = [
  ['small', 'klein'], ['big', 'groß'], ['young', 'jung'], ['old', 'alt'], ['red', 'rot'], ['blue', 'blau'],
  ['green', 'grün'], ['yellow', 'gelb'], ['black', 'schwarz'], ['white', 'weiß'], ['brown', 'braun'],
  ['happy', 'glücklich'], ['tired', 'müde'], ['new', 'neu'], ['pretty', 'hübsch'], ['wet', 'nass'],
  ['long', 'lang'], ['short', 'kurz'], ['quiet', 'ruhig'], ['busy', 'belebt'], ['wooden', 'hölzern'],
  ['colorful', 'bunt'], ['empty', 'leer'], ['cold', 'kalt'], ['warm', 'warm'], ['fast', 'schnell'],
];

/** Intransitive verbs: English -ing form, German 3rd person singular and plural. */
export const INTRANSITIVE: [string, string, string][] = [
  ['running', 'rennt', 'rennen'], ['sitting', 'sitzt', 'sitzen'], ['standing', 'steht', 'stehen'],
  ['jumping', 'springt', 'springen'], ['walking', 'geht', 'gehen'], ['sleeping', 'schläft', 'schlafen'],
  ['playing', 'spielt', 'spielen'], ['dancing', 'tanzt', 'tanzen'], ['singing', 'singt', 'singen'],
  ['waiting', 'wartet', 'warten'], ['smiling', 'lächelt', 'lächeln'], ['laughing', 'lacht', 'lachen'],
  ['resting', 'ruht', 'ruhen'], ['working', 'arbeitet', 'arbeiten'], ['climbing', 'klettert', 'klettern'],
  ['swimming', 'schwimmt', 'schwimmen'],
];

/** Transitive verbs (accusative object). */
export const TRANSITIVE: [string, string, string][] = [
  ['holding', 'hält', 'halten'], ['carrying', 'trägt', 'tragen'], ['throwing', 'wirft', 'werfen'],
  ['watching', 'beobachtet', 'beobachten'], ['pushing', 'schiebt', 'schieben'], ['pulling', 'zieht', 'ziehen'],
  ['kicking', 'tritt', 'treten'], ['catching', 'fängt', 'fangen'], ['reading', 'liest', 'lesen'],
  ['painting', 'malt', 'malen'], ['buying', 'kauft', 'kaufen'], ['cleaning', 'putzt', 'putzen'],
  ['wearing', 'trägt', 'tragen'], ['finding', 'findet', 'finden'],
];

/** Prepositions of place (dative) and of direction/other (accusative). */
export const DATIVE_PREPS: [string, string][] = [
  ['on', 'auf'], ['in', 'in'], ['next to', 'neben'], ['in front of', 'vor'], ['behind', 'hinter'],
  ['under', 'unter'], ['near', 'bei'], ['at', 'an'],
];
export const ACCUSATIVE_PREPS: [string, string][] = [['through', 'durch'], ['around', 'um'], ['over', 'über'], ['into', 'in']];

export const NUMBERS: [string, string][] = [['two', 'zwei'], ['three', 'drei'], ['four', 'vier'], ['five', 'fünf'], ['several', 'mehrere'], ['many', 'viele']];

/** Subordinating conjunctions (verb-final clauses). */
export const CONJUNCTIONS: [string, string][] = [['because', 'weil'], ['while', 'während'], ['although', 'obwohl']];
