// The files the end-to-end walk uploads and speaks, made at test time: a
// plain-text guide, a Word document (a zip archive written here, entries
// stored uncompressed) and a WAV of espeak-ng asking a question, followed
// by silence so that the server ends the turn on its own.

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

// The training material.  The chat question is answered from the text
// file; the Word document covers another product, so the sources show
// which file an answer came from.
export const TXT_NAME = 'gap-protection-guide.txt';
export const DOCX_NAME = 'tire-and-wheel-playbook.docx';

const TXT_TEXT = `GAP Protection: a guide for the F&I office

What GAP covers
Guaranteed Asset Protection, called GAP, pays the difference between what the customer still owes on the vehicle loan and the actual cash value the insurer pays when the vehicle is totaled or stolen. Without GAP the customer keeps paying a loan on a car they no longer have.

Who needs GAP
Customers who put little or nothing down, finance for seventy-two months or longer, or roll negative equity from a trade into the new loan are upside down for years. Every one of them should hear about GAP coverage before signing.

Presenting GAP on the menu
Present GAP on every menu, in every column. Explain it with the customer's own numbers: the amount financed, the likely value after the first year, and the gap between the two. Never pressure; show the numbers and let the customer decide.

GAP and compliance
GAP is optional and the customer must be told so in writing. The price of GAP is the same for every customer with the same term, and it is never hidden inside the payment.

Appendix: worksheets
`;

// Worked examples.  They also make the file large enough (about 40 KB)
// for its upload to show progress between 0 and 100 %: Chromium reports
// upload progress in steps of 16 KB.  The Word document's claims list
// does the same for it.
const WORKSHEETS = Array.from({ length: 300 }, (_, i) => {
  const financed = 24000 + ((i * 7919) % 26000);
  const months = [60, 66, 72, 75, 84][i % 5];
  const value = Math.round(financed * (0.68 + ((i * 37) % 12) / 100));
  return `Worksheet ${i + 1}: amount financed $${financed} over ${months} months; value after the first year about $${value}; the gap the customer would owe is $${financed - value}.`;
});

const TXT_FULL = `${TXT_TEXT}${WORKSHEETS.join('\n')}\n`;

const DOCX_PARAGRAPHS = [
  'Tire and Wheel Protection Playbook',
  'Tire and wheel protection repairs or replaces tires and wheels damaged by road hazards such as potholes, nails and debris, with no deductible.',
  'Ask the customer how far they drive each day and what the roads are like; low-profile tires on large wheels cost several hundred dollars each to replace.',
  'When the customer objects that the tires are new, explain that road hazards do not care how new a tire is, and that a single bent wheel costs more than the coverage.',
  'Appendix: road hazard claims',
  ...Array.from(
    { length: 250 },
    (_, i) =>
      `Claim ${i + 1}: a ${17 + (i % 6)}-inch ${i % 2 ? 'alloy wheel' : 'tire'} damaged by ${['a pothole', 'a nail', 'road debris', 'a curb'][i % 4]} after ${1 + (i % 30)} months, replaced at no cost to the customer.`,
  ),
];

/** A Word document (.docx) with the playbook's paragraphs. */
export function makeDocx() {
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const body = DOCX_PARAGRAPHS.map((p) => `<w:p><w:r><w:t xml:space="preserve">${esc(p)}</w:t></w:r></w:p>`).join('');
  const files = [
    [
      '[Content_Types].xml',
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>' +
        '<Default Extension="xml" ContentType="application/xml"/>' +
        '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>' +
        '</Types>',
    ],
    [
      '_rels/.rels',
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>' +
        '</Relationships>',
    ],
    [
      'word/document.xml',
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">' +
        `<w:body>${body}</w:body></w:document>`,
    ],
  ];
  return zipStored(files.map(([name, text]) => [name, Buffer.from(text, 'utf8')]));
}

/** A zip archive of [name, Buffer] entries, stored (method 0). */
function zipStored(entries) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  // 1980-01-01 00:00, the earliest DOS date: reproducible output
  const time = 0;
  const date = (0 << 9) | (1 << 5) | 1;
  for (const [name, data] of entries) {
    const nameBuf = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt16LE(time, 10);
    local.writeUInt16LE(date, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, nameBuf, data);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4); // made by
    central.writeUInt16LE(20, 6); // needed
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(0, 10);
    central.writeUInt16LE(time, 12);
    central.writeUInt16LE(date, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBuf.length, 28);
    // extra, comment, disk, internal attributes: 0
    central.writeUInt32LE(0, 38); // external attributes
    central.writeUInt32LE(offset, 42);
    centrals.push(central, nameBuf);
    offset += 30 + nameBuf.length + data.length;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}

/** The question the voice turn asks. */
export const SPOKEN_QUESTION = 'What does GAP insurance cover when a car is totaled?';

/**
 * A 16 kHz mono WAV of espeak-ng saying `text`, with `lead` seconds of
 * silence before (the call's socket opens meanwhile) and `silence` after
 * (sox pads it).
 */
export function makeSpeechWav(dir, text = SPOKEN_QUESTION, lead = 1.5, silence = 3) {
  const raw = join(dir, 'question-raw.wav');
  const out = join(dir, 'question.wav');
  execFileSync('espeak-ng', ['-v', 'en-us', '-s', '150', '-w', raw, text], { stdio: 'pipe' });
  execFileSync('sox', [raw, '-r', '16000', '-c', '1', '-b', '16', out, 'pad', String(lead), String(silence)], {
    stdio: 'pipe',
  });
  return out;
}

/** Writes the TXT and the DOCX into `dir`; returns their paths. */
export function writeDocuments(dir) {
  const txt = join(dir, TXT_NAME);
  const docx = join(dir, DOCX_NAME);
  writeFileSync(txt, TXT_FULL);
  writeFileSync(docx, makeDocx());
  return { txt, docx };
}
