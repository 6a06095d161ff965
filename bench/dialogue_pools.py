"""Value pools and phrasings for the two-speaker evaluation set (bench/dialogues.py).

Each pool pairs what a person says with what a question about it would say instead: a
category word for its members ("outdoor activities" for a morning in a kayak), a verb for
its paraphrase ("keen on" for "love"), a game for its console. Retrieval never sees these
tables; only the questions and the turns go through the API."""

from __future__ import annotations

NAMES = ["Caroline", "Melanie", "Jon", "Gina", "Tariq", "Nate", "Joanna", "Audrey", "Andrew", "Evan", "Sam",
         "Deborah", "Jolene", "Calvin", "Dave", "Maria", "John", "Tim", "Priya", "Kenji", "Amara", "Felix", "Ines",
         "Lars", "Yara", "Bruno", "Hana", "Diego", "Freya", "Omar"]
CITIES = ["Porto", "Lyon", "Krakow", "Osaka", "Nairobi", "Valencia", "Gothenburg", "Montreal", "Adelaide", "Cusco",
          "Tbilisi", "Bergen", "Seville", "Ljubljana", "Hanoi", "Cork", "Bologna", "Tallinn", "Lisbon", "Denver"]

# (species as a question says it, how a friend asks about the newcomer)
PETS = [("dog", "pup"), ("cat", "kitten"), ("rabbit", "bunny"), ("parrot", "bird"), ("hamster", "little furball")]
PET_NAMES = ["Biscuit", "Mango", "Pixel", "Juniper", "Waffles", "Nimbus", "Pepper", "Ziggy", "Clementine", "Boomer",
             "Saffron", "Tofu", "Marble", "Rocket", "Oliver", "Luna", "Bailey"]
# (what the show was, what a question calls the thing liked best, dishes)
SHOWS = [("baking show", "dessert", ["lemon tart", "pistachio eclair", "black forest gateau", "apple galette"]),
         ("cooking show", "dish", ["mushroom risotto", "lamb tagine", "miso ramen", "shakshuka"]),
         ("cocktail series", "drink", ["espresso martini", "paloma", "negroni sbagliato", "mojito"])]
KEEPSAKES = ["necklace", "leather jacket", "guitar", "ceramic vase", "pocket watch", "silver ring", "rug"]
JOBS = [("nurse", "at the hospital"), ("teacher", "at the school"), ("counsellor", "at the youth centre"),
        ("chef", "at the restaurant"), ("mechanic", "at the garage"), ("librarian", "at the library"),
        ("firefighter", "at the station"), ("architect", "at the firm")]

# A category as a question names it, and members as a person would mention them, never with the category word.
CATEGORIES = {
    "outdoor activities": [
        "spent the whole morning paddling a kayak around the lake, my arms are jelly",
        "we hiked up the ridge trail on Saturday and the view at the top was unreal",
        "went camping by the river with the kids, roasted marshmallows until midnight",
        "tried rock climbing at the quarry, scary but such a rush",
        "cycled the coast road with my cousin, sixty kilometres",
        "went fishing off the pier at dawn, caught nothing but loved it"],
    "creative hobbies": [
        "finally finished the vase I was throwing on the wheel at the studio",
        "I've been knitting a scarf every evening, it's weirdly calming",
        "painted the old barn near my place in watercolours this weekend",
        "started writing short poems in a notebook before bed",
        "made a collage out of old magazine cuttings for my wall",
        "sketched the cathedral from the square for two hours"],
    "ways to unwind": [
        "did a long yoga session on the balcony, felt brand new after",
        "took a hot bath with a book and my phone switched off",
        "meditated for twenty minutes before work every day this week",
        "baked bread on Sunday just because kneading calms me down",
        "went for a slow walk in the park with no headphones"],
}
# Inferences a question asks that only world knowledge connects to the category.
CATEGORY_INFERENCES = {
    "outdoor activities": "Would {x} enjoy a week in a national park?",
    "creative hobbies": "Would {x} likely enjoy an art class?",
    "ways to unwind": "What does {x} do to relax?",
}
# (what a person plays, the console a question asks about)
GAMES = [("Tears of the Kingdom", "Nintendo Switch"), ("Mario Kart", "Nintendo Switch"),
         ("Halo Infinite", "Xbox"), ("Forza Horizon", "Xbox"), ("God of War Ragnarok", "PlayStation"),
         ("Horizon Forbidden West", "PlayStation")]
# (genre a question names with "love", an artist the person names)
MUSIC = [("jazz", "Coltrane"), ("classical music", "Debussy"), ("folk music", "Joni Mitchell"),
         ("hip hop", "Kendrick Lamar"), ("country music", "Dolly Parton"), ("electronic music", "Aphex Twin")]
LIKE_PHRASES = ["I've been really keen on {g} lately, {a} is on repeat",
                "honestly can't get enough of {g}, been playing {a} all week",
                "{a} has had me hooked on {g} for months now"]
RESEARCH = ["adoption agencies", "solar panels for the roof", "sleep apnea treatments", "cheap flights to Japan",
            "dog training methods", "community gardens", "homeschooling options", "electric cars"]
RESEARCH_PHRASES = ["I've been reading up on {t} every night, there's so much to take in",
                    "spent the afternoon looking into {t}, made a whole spreadsheet",
                    "been digging through forums about {t} all week"]
EVENTS = ["support group meeting", "charity run", "pottery workshop", "book club", "job fair", "parents' evening",
          "farmers' market", "volunteer shift at the shelter"]
EVENT_PHRASES = ["I went to a {e} {when} and it was so {adj}", "{when} I finally made it to the {e}, really {adj}"]
ADJECTIVES = ["powerful", "fun", "inspiring", "exhausting", "eye-opening", "lovely"]
BANDS = ["the Velvet Orchards", "Neon Harbor", "Paper Lanterns", "the Midnight Ferns", "Copper Tides",
         "Solar Static", "the Quiet Comets", "Ember Kids"]
CONCERT_PHRASES = ["saw {b} live {when}, what a night", "{when} we went to the {b} gig, I lost my voice"]
BREEDS = ["golden retriever", "dachshund", "border collie", "corgi", "husky", "pug"]
PAINT_SUBJECTS = ["sunrise over the harbour", "field of sunflowers", "lighthouse in a storm", "bowl of lemons",
                  "snowy mountain"]
RELATIVES = ["sister", "brother", "cousin", "aunt"]
EMPLOYERS = ["Northwind Logistics", "Bluefin Analytics", "Helix Biotech", "Orbital Games", "Lumen Health",
             "Ferrow Bank"]

OPENERS = ["Hey {o}! Long time no talk, how have you been?", "Hi {o}, so good to hear from you!",
           "Hey {o}! How's your week going?", "{o}! I was just thinking about you."]
REPLIES_TO_OPENER = ["Hey! Pretty good, busy as always. You?", "Hi! All good here, a bit tired but happy.",
                     "Doing alright, thanks for asking! What's new with you?"]
# Chatter is composed (lead-in, sentence, sometimes the partner's name), so few turns repeat word for word.
LEAD_INS = ["", "", "", "Haha, ", "Oh wow, ", "Aw, ", "Honestly, ", "Yeah, ", "Ugh, ", "Ooh, ", "Lol ", "Hmm, "]
CHATTER = [
    "that's awesome, I'm so happy for you!", "totally get that.", "that sounds amazing.",
    "that sounds stressful, hope it gets better soon.", "thanks, that means a lot.",
    "life has been a whirlwind lately.", "that's so sweet of you to say.", "I needed to hear that today.",
    "work has been hectic this month.", "you always know how to cheer me up.", "what are you up to this weekend?",
    "not much planned, probably resting and catching up on sleep.", "any plans for the summer yet?",
    "I've been trying to drink more water and sleep earlier.", "the weather has been so gloomy lately.",
    "did you watch anything good recently?", "take care of yourself, okay?", "talk soon!",
    "I'm proud of you, seriously.", "that reminds me, I need to call my mom back.",
    "sorry I've been slow to reply, it's been chaos.", "we should grab coffee when things calm down.",
    "my boss moved the deadline again, classic.", "the kids have been bouncing off the walls all week.",
    "I tried a new recipe last night and burned it completely.", "traffic this morning was unbelievable.",
    "I can't believe it's already the end of the month.", "my back is killing me from sitting all day.",
    "we finally fixed the leaky tap in the kitchen.", "I'm trying to read more and scroll less.",
    "the neighbours had a party until 3am, so I'm a zombie.", "I've been meaning to ask how your family is.",
    "it's been raining nonstop here.", "I signed up for a newsletter and now my inbox is a disaster.",
    "my mom keeps sending me articles about vitamins.", "we binged a whole series over the weekend.",
    "I need a holiday, even a short one.", "coffee is the only thing keeping me going.",
    "it's nice to just chat without any agenda.", "you're such a good friend, you know that?",
    "that's such a good point, I never thought of it that way.", "keep me posted on how it goes!",
    "fingers crossed for you!", "I laughed way too hard at that.", "no way, really?",
    "that's the best news I've heard all week.", "I hear you, it's a lot to juggle.",
    "I spent the whole evening cleaning out the closet.", "my phone screen cracked again, of course.",
]
# Look-alikes: the partner's own pets, concerts, events and trips, in the same words as the facts.
LOOKALIKES = [
    "my neighbour's {species} keeps escaping into our garden", "a friend of mine saw {b} live and hated it",
    "I almost signed up for the {e} but chickened out", "my cousin just moved to {c}",
    "my coworker keeps talking about {t}", "I walked past a {e} on my way home",
    "my brother wants a {item} for his birthday", "there's a {g} night at the bar near work",
    "my sister's {species} got into the bin again", "someone at work has tickets for {b}, not my thing",
    "our street is hosting a {e} next month", "my friend from {c} says it's lovely in spring",
    "my aunt sent me a video about {t}", "I saw a {item} just like yours in a shop window",
    "the radio played {g} all morning", "my uncle retired to {c} last year",
    "the local paper had a piece on {t}", "my flatmate went to a {e} and won't stop talking about it",
    "I found an old {item} in my grandma's attic", "my boss adopted a {species}, it's all he talks about",
]
