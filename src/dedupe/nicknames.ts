/**
 * English given-name diminutives → one formal name, so that "Bob Smith" and "Robert Smith" compare
 * as the same first name. Each diminutive maps to its most common formal name; a name that is
 * itself formal maps to itself. Ambiguous short forms (e.g. "chris": christopher / christine,
 * "alex", "sam", "jo") map to one choice, which is harmless: both records map the same way.
 */
const FORMAL_TO_DIMINUTIVES: Readonly<Record<string, readonly string[]>> = {
  abigail: ['abby', 'abbie', 'gail'],
  albert: ['al', 'bert', 'bertie'],
  alexander: ['alex', 'alec', 'sandy', 'xander', 'lex'],
  alexandra: ['alexa', 'lexi', 'sandra', 'sasha'],
  alfred: ['alf', 'alfie', 'fred', 'freddie'],
  andrew: ['andy', 'drew'],
  anthony: ['tony', 'ant'],
  barbara: ['barb', 'babs', 'barbie'],
  benjamin: ['ben', 'benny', 'benji'],
  catherine: ['cathy', 'cath', 'kate', 'katie', 'kathy', 'cat', 'kat', 'katherine', 'kathryn'],
  charles: ['charlie', 'chuck', 'chas'],
  charlotte: ['lottie', 'charlie'],
  christina: ['tina', 'chrissy'],
  christopher: ['chris', 'kit', 'topher'],
  daniel: ['dan', 'danny'],
  david: ['dave', 'davey', 'davy'],
  deborah: ['deb', 'debbie', 'debby', 'debra'],
  donald: ['don', 'donny'],
  dorothy: ['dot', 'dottie', 'dolly'],
  edward: ['ed', 'eddie', 'ted', 'teddy', 'ned'],
  elizabeth: ['liz', 'lizzie', 'beth', 'betty', 'bess', 'eliza', 'libby', 'lisa', 'elisabeth'],
  eleanor: ['ellie', 'nell', 'nora'],
  frances: ['fran', 'frankie'],
  francis: ['frank'],
  frederick: ['freddy', 'fritz'],
  gregory: ['greg'],
  harold: ['harry', 'hal'],
  henry: ['hank'],
  isabella: ['bella', 'izzy', 'isabel', 'isabelle'],
  jacob: ['jake'],
  james: ['jim', 'jimmy', 'jamie', 'jimbo'],
  jennifer: ['jen', 'jenny', 'jenn'],
  jessica: ['jess', 'jessie'],
  john: ['johnny', 'jack', 'jon'],
  jonathan: ['jonny', 'nathan'],
  joseph: ['joe', 'joey', 'jo'],
  joshua: ['josh'],
  judith: ['judy', 'jude'],
  katrina: ['trina'],
  kenneth: ['ken', 'kenny'],
  lawrence: ['larry', 'laurie'],
  leonard: ['leo', 'len', 'lenny'],
  margaret: ['maggie', 'meg', 'peggy', 'madge', 'marge', 'margie', 'greta', 'daisy'],
  matilda: ['tilly', 'tilda'],
  matthew: ['matt', 'matty'],
  michael: ['mike', 'mick', 'mickey', 'micky', 'mikey'],
  nathaniel: ['nate', 'nat'],
  nicholas: ['nick', 'nicky', 'nico'],
  patricia: ['pat', 'patty', 'patsy', 'trish', 'tricia'],
  patrick: ['paddy'],
  peter: ['pete'],
  philip: ['phil', 'pip'],
  rebecca: ['becky', 'becca', 'becki'],
  richard: ['rick', 'ricky', 'rich', 'richie', 'dick'],
  robert: ['bob', 'bobby', 'rob', 'robbie', 'bert', 'robby'],
  ronald: ['ron', 'ronnie'],
  samuel: ['sam', 'sammy'],
  samantha: ['sammie'],
  stephen: ['steve', 'stevie', 'steven'],
  susan: ['sue', 'susie', 'suzy', 'suzanne'],
  theodore: ['theo'],
  thomas: ['tom', 'tommy'],
  timothy: ['tim', 'timmy'],
  victoria: ['vicky', 'vicki', 'tori'],
  william: ['bill', 'billy', 'will', 'willy', 'willie', 'liam'],
  zachary: ['zach', 'zack'],
};

const DIMINUTIVE_TO_FORMAL: ReadonlyMap<string, string> = (() => {
  const map = new Map<string, string>();
  for (const [formal, diminutives] of Object.entries(FORMAL_TO_DIMINUTIVES)) {
    for (const d of diminutives) if (!map.has(d)) map.set(d, formal);
  }
  return map;
})();

/** The formal form of a normalised (lower-case, ASCII) given name; the name itself otherwise. */
export function formalFirstName(name: string): string {
  return DIMINUTIVE_TO_FORMAL.get(name) ?? name;
}

/** For generators and tests: the diminutives of a formal name. */
export function diminutivesOf(formal: string): readonly string[] {
  return FORMAL_TO_DIMINUTIVES[formal] ?? [];
}

export const FORMAL_NAMES: readonly string[] = Object.keys(FORMAL_TO_DIMINUTIVES);
