#!/bin/sh
# Regenerates the small document fixtures of t/unit/test_extract.c in this
# directory.  Needs only sh, printf, wc, head, touch and zip (Debian: zip).
# The output is byte-for-byte reproducible, so the committed files can be
# checked with "sh t/data/make-fixtures.sh && git diff --exit-code t/data".
#
#   sample.pdf     two pages of text in a hand-written PDF 1.4
#   truncated.pdf  the first half of sample.pdf (an interrupted upload)
#   sample.docx    a title, a heading, a paragraph with a tab, a list, a
#                  table, a line break and a tracked deletion
#   notword.zip    a zip archive without word/document.xml
set -eu

cd "$(dirname "$0")"
umask 022
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- sample.pdf -------------------------------------------------------------
# Objects are appended one by one; the byte offset of each is recorded for
# the cross-reference table, which must be exact.

pdf=$tmp/sample.pdf
offsets=""

pdf_put() {
    printf '%s\n' "$1" >> "$pdf"
}

pdf_obj() {
    offsets="$offsets $(wc -c < "$pdf" | tr -d ' ')"
    pdf_put "$1"
}

pdf_stream() {
    # $1 object number, $2 content
    len=$(printf '%s' "$2" | wc -c | tr -d ' ')
    pdf_obj "$1 0 obj"
    pdf_put "<< /Length $len >>"
    pdf_put "stream"
    printf '%s' "$2" >> "$pdf"
    pdf_put ""
    pdf_put "endstream"
    pdf_put "endobj"
}

page1='BT
/F1 20 Tf 72 720 Td (Vehicle Service Contracts) Tj
/F1 11 Tf 0 -30 Td (A service contract covers repairs after the factory warranty ends.) Tj
0 -16 Td (The customer pays $1,250.00 at 5.9% APR over 60 months.) Tj
0 -28 Td (Always present the menu to every customer.) Tj
ET'
page2='BT
/F1 11 Tf 72 720 Td (Page two explains the GAP waiver and its limits.) Tj
ET'

printf '%%PDF-1.4\n%%\342\343\317\323\n' > "$pdf"
pdf_obj '1 0 obj
<< /Type /Catalog /Pages 2 0 R >>
endobj'
pdf_obj '2 0 obj
<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>
endobj'
pdf_obj '3 0 obj
<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]
   /Resources << /Font << /F1 5 0 R >> >> /Contents 6 0 R >>
endobj'
pdf_obj '4 0 obj
<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]
   /Resources << /Font << /F1 5 0 R >> >> /Contents 7 0 R >>
endobj'
pdf_obj '5 0 obj
<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica
   /Encoding /WinAnsiEncoding >>
endobj'
pdf_stream 6 "$page1"
pdf_stream 7 "$page2"

xref=$(wc -c < "$pdf" | tr -d ' ')
pdf_put "xref"
pdf_put "0 8"
pdf_put "0000000000 65535 f "
for o in $offsets; do
    pdf_put "$(printf '%010d 00000 n ' "$o")"
done
pdf_put "trailer"
pdf_put "<< /Size 8 /Root 1 0 R >>"
pdf_put "startxref"
pdf_put "$xref"
pdf_put "%%EOF"

cp "$pdf" sample.pdf
size=$(wc -c < sample.pdf | tr -d ' ')
head -c $((size / 2)) sample.pdf > truncated.pdf

# ---- sample.docx ------------------------------------------------------------

d=$tmp/docx
mkdir -p "$d/_rels" "$d/word/_rels" "$d/docProps"

cat > "$d/[Content_Types].xml" <<'XML'
<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>
<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>
</Types>
XML

cat > "$d/_rels/.rels" <<'XML'
<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>
</Relationships>
XML

cat > "$d/word/_rels/document.xml.rels" <<'XML'
<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>
XML

cat > "$d/docProps/core.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:title>F&amp;I Product Guide</dc:title>
</cp:coreProperties>
XML

cat > "$d/word/document.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">
<w:body>
<w:p><w:pPr><w:pStyle w:val="Title"/></w:pPr><w:r><w:t>F&amp;I Product Guide</w:t></w:r></w:p>
<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>GAP Protection</w:t></w:r></w:p>
<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr><w:r><w:t xml:space="preserve">GAP covers the difference </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>between ACV and payoff.</w:t></w:r><w:del w:id="1" w:author="x"><w:r><w:delText>REMOVED TEXT</w:delText></w:r></w:del><w:r><w:tab/><w:t>Note</w:t></w:r></w:p>
<w:p/>
<w:p><w:pPr><w:pStyle w:val="ListParagraph"/><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>Down payment under 20%</w:t></w:r></w:p>
<w:p><w:pPr><w:pStyle w:val="ListParagraph"/><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>Term of 60 months or longer</w:t></w:r></w:p>
<w:p><w:pPr><w:pStyle w:val="ListBullet"/></w:pPr><w:r><w:t>Negative equity</w:t></w:r></w:p>
<w:tbl>
<w:tblPr><w:tblW w:w="0" w:type="auto"/></w:tblPr>
<w:tr><w:tc><w:p><w:r><w:t>Product</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Cost</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Term</w:t></w:r></w:p></w:tc></w:tr>
<w:tr><w:tc><w:p><w:r><w:t>GAP</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>$895.00</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>72 months</w:t></w:r></w:p></w:tc></w:tr>
<w:tr><w:tc><w:p><w:r><w:t>VSC</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>$2,150.00</w:t></w:r></w:p><w:p><w:r><w:t>plus tax</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>60 months</w:t></w:r></w:p></w:tc></w:tr>
</w:tbl>
<w:p><w:r><w:t>Line one</w:t></w:r><w:r><w:br/><w:t>Line two</w:t></w:r></w:p>
<w:sectPr/>
</w:body>
</w:document>
XML

(
    cd "$d"
    find . -exec touch -h -t 202001010000 {} +
    rm -f "$tmp/sample.docx"
    zip -X -q "$tmp/sample.docx" '[Content_Types].xml' _rels/.rels \
        word/document.xml word/_rels/document.xml.rels docProps/core.xml
)
cp "$tmp/sample.docx" sample.docx

# ---- notword.zip ------------------------------------------------------------

z=$tmp/zip
mkdir -p "$z"
printf 'mimetype: not a Word document\n' > "$z/readme.txt"
printf '<?xml version="1.0"?><doc/>\n' > "$z/content.xml"
(
    cd "$z"
    find . -exec touch -h -t 202001010000 {} +
    zip -X -q "$tmp/notword.zip" readme.txt content.xml
)
cp "$tmp/notword.zip" notword.zip
