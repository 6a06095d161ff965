"""Value pools and phrasings for the messaging-app evaluation set (bench/chats.py).

People are written the way a chat app shows and uses them: a lowercase display name, the
nicknames a friend actually calls them, and the spellings a question might use instead (a
misspelling, a transliteration, the English form). Facts come as bursts of short lines, and
the words a question uses (a category, a date as numbers, a season) are never the words of
the lines that answer it. Retrieval never sees these tables; only questions and lines go
through the API."""

from __future__ import annotations

# (display name, first name as a question would write it correctly, nicknames used in the chat,
#  other spellings a question may use)
PEOPLE = [
    ("katia", "Katia", ["kat", "katiaa", "kitkat"], ["Katya", "Kat", "Katja"]),
    ("muhamad", "Muhamad", ["mo", "moe", "hamoudi"], ["Mohammed", "Muhammad", "Mohamed"]),
    ("aleksandr", "Aleksandr", ["sasha", "sash"], ["Alexander", "Sasha", "Aleksander"]),
    ("gosia m", "Małgorzata", ["gosia", "gosiu"], ["Malgorzata", "Gosia", "Malgosia"]),
    ("josé", "José", ["pepe", "jose"], ["Jose", "Pepe", "Josè"]),
    ("zoë", "Zoë", ["zo", "zozo"], ["Zoe", "Zoey", "Zooey"]),
    ("siobhan", "Siobhan", ["shiv", "shivvy"], ["Shivon", "Siobhán", "Shiv"]),
    ("stephen b", "Stephen", ["steve", "stevie"], ["Steven", "Steve", "Stephan"]),
    ("catherine", "Catherine", ["cath", "cathy"], ["Kathryn", "Katherine", "Cathy"]),
    ("yusuf", "Yusuf", ["yus", "yoyo"], ["Yousef", "Youssef", "Yussuf"]),
    ("jürgen", "Jürgen", ["jü", "juju"], ["Jurgen", "Juergen", "Jurgen"]),
    ("leila ✨", "Leila", ["lei", "lulu"], ["Layla", "Laila", "Leyla"]),
    ("anastasia", "Anastasia", ["nastya", "stasia"], ["Anastasiya", "Nastya", "Anastacia"]),
    ("jakub", "Jakub", ["kuba", "kubus"], ["Jacob", "Kuba", "Jakob"]),
    ("dmitri", "Dmitri", ["dima", "dimka"], ["Dmitry", "Dima", "Dimitri"]),
    ("priyanka", "Priyanka", ["pri", "priyu"], ["Prianka", "Priya", "Priyanca"]),
    ("rafa", "Rafael", ["rafa", "rafi"], ["Raphael", "Rafa", "Raffael"]),
    ("sofía 🌻", "Sofía", ["sofi", "sof"], ["Sofia", "Sophia", "Sofi"]),
    ("thuy nguyen", "Thuy", ["thuy", "tee"], ["Thui", "Thuy", "Thuey"]),
    ("chiara", "Chiara", ["chia", "kiki"], ["Kiara", "Chiarra", "Kiarra"]),
    ("sebastián", "Sebastián", ["seba", "sebas"], ["Sebastian", "Seb", "Sebastien"]),
    ("giorgos", "Giorgos", ["george", "gio"], ["Yorgos", "Georgios", "George"]),
]

# Other people the two talk about: colleagues, family, friends (lowercase, as typed).
OTHERS = ["dana", "jess", "tom", "marco", "aisha", "ben", "lena", "omar", "nina", "raj", "ellie", "felix", "hana",
          "luca", "maya", "sam", "ines", "noah", "tara", "viktor", "yara", "ollie", "freya", "kenji"]
RELATIVES = ["sister", "brother", "cousin", "aunt", "uncle", "flatmate", "neighbour"]
CITIES = ["lisbon", "krakow", "porto", "leeds", "valencia", "split", "bologna", "ghent", "tbilisi", "edinburgh",
          "seville", "ljubljana", "marseille", "bergen", "naples", "dubrovnik", "tallinn", "cork", "bruges"]
PLACES = ["that ramen place", "the thai place on the corner", "nando's", "the new vegan cafe", "the pub by work",
          "the dumpling bar", "the italian near the station", "the sushi place", "the market food hall",
          "the greek taverna", "the burrito truck", "the rooftop bar"]

# A category as a question names it, and instances as a person mentions them (never the category word).
CATEGORIES: dict[str, dict[str, list[str]]] = {
    "cook": {
        "questions": ["What did {x} cook?", "What has {x} made in the kitchen?", "What dishes did {x} make at home?",
                      "What food did {x} make at home?", "Which recipes did {x} try?"],
        "items": ["banana bread", "a lentil curry", "lasagne", "pad thai", "shakshuka", "pierogi", "sourdough",
                  "tiramisu", "dumplings", "mushroom risotto", "chili", "cinnamon rolls", "a fish pie", "gnocchi"],
        "lines": ["made {i} tonight", "{i} attempt number 2 🙈", "just pulled {i} out of the oven",
                  "tried that {i} recipe from tiktok", "the {i} actually worked this time",
                  "spent all afternoon on {i} lol", "first time making {i} from scratch"],
    },
    "art": {
        "questions": ["Which paintings does {x} like?", "What artworks does {x} love?", "Which art is {x} into?",
                      "What pictures has {x} raved about?"],
        "items": ["monet's water lilies", "van gogh's starry night", "klimt's the kiss", "hokusai's great wave",
                  "the girl with a pearl earring", "frida kahlo's self portraits", "turner's sunsets",
                  "hopper's nighthawks"],
        "lines": ["{i} is my fav thing ever", "stood in front of {i} for like 20 min", "obsessed w {i} tbh",
                  "got a print of {i} for the hallway", "saw {i} irl today and cried a bit"],
    },
    "sport": {
        "questions": ["What sports does {x} play?", "What kind of exercise does {x} do?",
                      "How does {x} keep fit?", "Which sports has {x} done lately?"],
        "items": ["padel", "5-a-side", "bouldering", "swimming", "spin class", "tennis", "a 10k run", "volleyball",
                  "kickboxing", "rowing"],
        "lines": ["{i} with the guys tonight", "{i} was brutal today", "did {i} after work, dead now",
                  "signed up for {i} on thursdays", "my legs after {i} 💀", "{i} again this morning"],
    },
    "watch": {
        "questions": ["What shows has {x} been watching?", "What series is {x} into?", "What has {x} been binging?",
                      "Which tv shows did {x} talk about?"],
        "items": ["severance", "the bear", "succession", "slow horses", "shogun", "the last of us", "fleabag",
                  "dark", "white lotus", "only murders"],
        "lines": ["started {i} omg", "finished {i} last night, no thoughts just vibes", "3 eps of {i} in a row oops",
                  "why did nobody tell me {i} was this good", "{i} finale!!! 😭"],
    },
    "music": {
        "questions": ["Which concerts did {x} go to?", "What gigs has {x} seen?", "What live music has {x} been to?"],
        "items": ["arctic monkeys", "fontaines dc", "rosalía", "khruangbin", "wet leg", "the national", "little simz",
                  "bicep", "caribou"],
        "lines": ["{i} were insane last night", "still deaf from {i} lol", "queue for {i} is so long",
                  "{i} played the new one!!!", "got {i} tickets for tonight 🎶"],
    },
}

# Things done on a day with someone: the questions ask who, or where, naming the date in numbers.
MEALS = ["lunch", "dinner", "brunch", "coffee", "drinks"]
MEAL_LINES = ["{m} w {p} at {pl} 🍜", "{m} with {p} today, {pl} was packed", "off to {m} with {p}",
              "{p} dragged me to {pl} for {m} lol", "just had {m} with {p}, so needed that"]

# Trips: the question names the season or a range of dates.
TRIP_LINES = ["landed in {c}!!", "{c} is so pretty omg", "greetings from {c} ☀️", "we're in {c} till sunday",
              "first night in {c}, the food already 😍", "made it to {c}, hotel is tiny lol"]
# Purchases: asked with a range of dates.
BUYS = ["new running shoes", "a second hand bike", "a new phone", "a standing desk", "an air fryer", "a record player",
        "a winter coat", "a tent", "noise cancelling headphones", "a sewing machine", "a projector", "a kindle"]
BUY_LINES = ["finally bought {b}", "ordered {b} lol my bank account", "got {b} on sale!!", "{b} arrived today 📦",
             "treated myself to {b}"]

# One-off events asked with "when did ...": (what the question says, what the lines say).
EVENTS = [
    ("start the new job", ["first day at the new place today eek", "new job day 1 survived", "starting at the new job today, nervous af"]),
    ("get a tattoo", ["got the tattoo!!! it stings lol", "tattoo done 🖤 on my wrist", "just got inked, finally did it"]),
    ("move flat", ["moving day 📦📦📦", "keys to the new flat today!!", "we moved!! boxes everywhere"]),
    ("pass the driving test", ["PASSED 🚗🎉", "passed my test first time omg", "i'm a legal driver now lmao"]),
    ("get a haircut", ["chopped all my hair off lol", "new haircut, not sure yet", "got a fringe. regret pending"]),
    ("get covid", ["tested positive ugh", "two lines on the test 🤒", "covid again, bed for the week"]),
    ("adopt the cat", ["we adopted a cat!!!", "new family member 🐈 from the shelter", "brought the kitty home today"]),
    ("run the half marathon", ["21k done 🏅", "half marathon finished, can't feel my legs", "crossed the finish line!!"]),
    ("go to the dentist", ["dentist today, two fillings 😬", "just left the dentist, face numb", "dentist said no cavities!!"]),
    ("break the phone", ["dropped my phone, screen shattered", "phone is dead, rip", "cracked my screen again ffs"]),
]
# Said by the other person: (question about X, lines the friend says, the reply of X)
OTHER_SAID = [
    ("When is {x}'s birthday?", ["{n} happy birthday!!! 🎂🎉", "happy bday {n} 🥳 have the best day"], ["thank uuu ❤️", "aww thanks!!"]),
    ("What did {x} get from {f} as a gift?", ["did the {g} arrive?? 🎁", "hope u like the {g} {n}"], ["yess love it", "omg it's perfect"]),
    ("Who did {f} set {x} up with?", ["{n} u should meet {p}, they're so ur type", "i gave {p} ur number hope that's ok"], ["omg ok", "lol fine"]),
]
GIFTS = ["scarf", "cookbook", "plant", "candle", "mug", "vinyl", "earrings", "puzzle", "tote bag", "hoodie"]

# A fact split over the lines of one burst: the thing, then its name.
PETS = [("puppy", "dog"), ("kitten", "cat"), ("bunny", "rabbit"), ("hamster", "hamster")]
PET_NAMES = ["biscuit", "mango", "pixel", "waffles", "nimbus", "pepper", "ziggy", "tofu", "marble", "noodle", "olive"]
SPLIT_OPENERS = ["we got a {p}!!!", "surprise... there's a {p} in my flat", "guess who has a {p} now"]
SPLIT_NAMES = ["his name is {name}", "we called her {name}", "{name}. that's the name. 🐾", "meet {name} lol"]

# The words of chat itself: composed, so few lines repeat word for word.
REACTIONS = ["lol", "lmao", "haha", "hahaha", "😂😂", "omg", "noo", "yesss", "same", "ikr", "fr", "ok", "k", "👍",
             "❤️", "ugh", "wait what", "no wayyy", "🙈", "sameee", "true", "hmm", "aww", "nice", "ooh", "lolll",
             "😭", "💀", "ahh", "yep", "nah", "oh no", "hahah stop", "for real?", "wow", "🥲", "yay", "oof", "mood"]
OPENERS = ["morning ☀️", "u up?", "hiii", "heyy", "{n}!!", "{n} u there", "morning {n}", "yo", "good morning x",
           "hey {n} how's ur day"]
CLOSERS = ["night x", "going to bed, talk tmrw", "sleep well 😴", "ok ttyl", "gotta run", "night {n} ❤️", "byeee"]
LOGISTICS = ["what time?", "{t} works", "omw", "running 10 min late sorry", "at the station", "call u later?",
             "can't talk rn", "u free {d}?", "maybe {d}?", "ill let u know", "did u see my msg", "sorry was in a meeting",
             "just woke up", "where are u", "5 min", "leaving now", "save me a seat", "bus is late again",
             "can u grab milk", "text me when ur home", "is it still on for {d}?", "{d} is bad for me, {d2}?"]
TIMES = ["7", "7ish", "half 6", "8:30", "noon", "after work", "around 6", "1pm"]
DAYS = ["tmrw", "friday", "sat", "sunday", "monday", "the weekend", "next week", "tonight"]
SUBJECTS = ["my boss", "the landlord", "my mum", "the cat next door", "the neighbours", "my flatmate", "the bus",
            "my manager", "the wifi", "my back", "the printer", "my dad", "the baby upstairs", "this weather"]
PREDICATES = ["is driving me crazy", "finally replied", "was late again", "is being weird", "won't stop",
              "did it again lol", "is actually fine today", "made my whole day", "broke down this morning",
              "keeps calling", "is so loud", "sent me a meme", "forgot again", "is on holiday thank god"]
OPINIONS = ["so {a}", "that's {a} tbh", "honestly {a}", "kinda {a}", "{a} af", "lowkey {a}", "sooo {a}"]
ADJECTIVES = ["cute", "annoying", "weird", "funny", "random", "tiring", "good", "boring", "wild", "chaotic", "sad"]
ASKS = ["wyd", "hbu?", "how was ur day?", "how did it go?", "did u eat?", "u ok?", "what's the plan?", "any news?",
        "how's work?", "did u sleep?", "u home?", "how's {o}?"]
MEDIA = ["<Media omitted>", "IMG-{num}.jpg (file attached)", "[photo]", "<attached: {num}-PHOTO.jpg>", "[sticker]"]
SLANG = ["ngl", "tbh", "idk", "imo", "lowkey", "highkey", "rn", "omw", "bc", "smh"]
EMOJI = ["😂", "😭", "🙈", "❤️", "😍", "🥲", "💀", "✨", "🙃", "😅", "🔥", "👀", "🥹", "😴", "🙏"]
# Same words as the facts, about someone else: look-alikes.
LOOKALIKES = ["my {r} made {i} too lol", "{o} keeps talking about {i}", "{o} went to {c} last year",
              "{o} wants {b} for her birthday", "{o} had {m} at {pl} yesterday apparently",
              "my {r} is obsessed with {i}", "saw an ad for {i}", "{o} got a {p}, so jealous",
              "{o} is thinking about going to {c}", "might get {b} idk"]
